package org.billingcenter.api;

import java.util.Date;

/** A state change of an order (ACTIVE, PAUSED, RESUMED, CANCELLED, EXPIRED); idempotent on eventId. */
public class OrderStateChange implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String eventId;
    private String orderId;
    private String state;
    private Date changedAt;

    public OrderStateChange() {
    }

    public String getEventId() {
        return eventId;
    }

    public void setEventId(String eventId) {
        this.eventId = eventId;
    }

    public String getOrderId() {
        return orderId;
    }

    public void setOrderId(String orderId) {
        this.orderId = orderId;
    }

    public String getState() {
        return state;
    }

    public void setState(String state) {
        this.state = state;
    }

    public Date getChangedAt() {
        return changedAt;
    }

    public void setChangedAt(Date changedAt) {
        this.changedAt = changedAt;
    }

    @Override
    public String toString() {
        return "OrderStateChange{"
            + "eventId=" + eventId
            + ", orderId=" + orderId
            + ", state=" + state
            + ", changedAt=" + changedAt
            + "}";
    }
}

package org.billingcenter.api;

import java.util.Date;

/** A payer's order stopped or reopened (outbound feedbackUser); idempotent on noticeId. */
public class ServiceNotice implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String noticeId;
    private String payerId;
    private String orderId;
    private String productCode;
    private String action;
    private String reason;
    private Date at;

    public ServiceNotice() {
    }

    public String getNoticeId() {
        return noticeId;
    }

    public void setNoticeId(String noticeId) {
        this.noticeId = noticeId;
    }

    public String getPayerId() {
        return payerId;
    }

    public void setPayerId(String payerId) {
        this.payerId = payerId;
    }

    public String getOrderId() {
        return orderId;
    }

    public void setOrderId(String orderId) {
        this.orderId = orderId;
    }

    public String getProductCode() {
        return productCode;
    }

    public void setProductCode(String productCode) {
        this.productCode = productCode;
    }

    public String getAction() {
        return action;
    }

    public void setAction(String action) {
        this.action = action;
    }

    public String getReason() {
        return reason;
    }

    public void setReason(String reason) {
        this.reason = reason;
    }

    public Date getAt() {
        return at;
    }

    public void setAt(Date at) {
        this.at = at;
    }

    @Override
    public String toString() {
        return "ServiceNotice{"
            + "noticeId=" + noticeId
            + ", payerId=" + payerId
            + ", orderId=" + orderId
            + ", productCode=" + productCode
            + ", action=" + action
            + ", reason=" + reason
            + ", at=" + at
            + "}";
    }
}

package org.billingcenter.api;

import java.util.Date;
import java.util.Map;

/** One per-use consumption record; idempotent on opId. */
public class ServiceOp implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String opId;
    private String orderId;
    private String productCode;
    private String itemCode;
    private String userId;
    private String payerId;
    private long quantity;
    private Date occurredAt;
    private Map<String, String> attributes;

    public ServiceOp() {
    }

    public String getOpId() {
        return opId;
    }

    public void setOpId(String opId) {
        this.opId = opId;
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

    public String getItemCode() {
        return itemCode;
    }

    public void setItemCode(String itemCode) {
        this.itemCode = itemCode;
    }

    public String getUserId() {
        return userId;
    }

    public void setUserId(String userId) {
        this.userId = userId;
    }

    public String getPayerId() {
        return payerId;
    }

    public void setPayerId(String payerId) {
        this.payerId = payerId;
    }

    public long getQuantity() {
        return quantity;
    }

    public void setQuantity(long quantity) {
        this.quantity = quantity;
    }

    public Date getOccurredAt() {
        return occurredAt;
    }

    public void setOccurredAt(Date occurredAt) {
        this.occurredAt = occurredAt;
    }

    public Map<String, String> getAttributes() {
        return attributes;
    }

    public void setAttributes(Map<String, String> attributes) {
        this.attributes = attributes;
    }

    @Override
    public String toString() {
        return "ServiceOp{"
            + "opId=" + opId
            + ", orderId=" + orderId
            + ", productCode=" + productCode
            + ", itemCode=" + itemCode
            + ", userId=" + userId
            + ", payerId=" + payerId
            + ", quantity=" + quantity
            + ", occurredAt=" + occurredAt
            + ", attributes=" + attributes
            + "}";
    }
}

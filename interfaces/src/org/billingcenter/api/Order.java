package org.billingcenter.api;

import java.util.Date;

/** A new order line from the order system; idempotent on orderId. */
public class Order implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String orderId;
    private String payerId;
    private String userId;
    private String productCode;
    private String planCode;
    private Date activatedAt;
    private int accountNum;

    public Order() {
    }

    public String getOrderId() {
        return orderId;
    }

    public void setOrderId(String orderId) {
        this.orderId = orderId;
    }

    public String getPayerId() {
        return payerId;
    }

    public void setPayerId(String payerId) {
        this.payerId = payerId;
    }

    public String getUserId() {
        return userId;
    }

    public void setUserId(String userId) {
        this.userId = userId;
    }

    public String getProductCode() {
        return productCode;
    }

    public void setProductCode(String productCode) {
        this.productCode = productCode;
    }

    public String getPlanCode() {
        return planCode;
    }

    public void setPlanCode(String planCode) {
        this.planCode = planCode;
    }

    public Date getActivatedAt() {
        return activatedAt;
    }

    public void setActivatedAt(Date activatedAt) {
        this.activatedAt = activatedAt;
    }

    public int getAccountNum() {
        return accountNum;
    }

    public void setAccountNum(int accountNum) {
        this.accountNum = accountNum;
    }

    @Override
    public String toString() {
        return "Order{"
            + "orderId=" + orderId
            + ", payerId=" + payerId
            + ", userId=" + userId
            + ", productCode=" + productCode
            + ", planCode=" + planCode
            + ", activatedAt=" + activatedAt
            + ", accountNum=" + accountNum
            + "}";
    }
}

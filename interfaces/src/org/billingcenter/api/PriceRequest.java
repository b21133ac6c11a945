package org.billingcenter.api;

import java.util.Date;
import java.util.Map;

/** A request for a price quote (getTotalPrice). */
public class PriceRequest implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String payerId;
    private String productCode;
    private String planCode;
    private String orderId;
    private long quantity;
    private int days;
    private int accountNum;
    private Date at;
    private Map<String, String> attributes;

    public PriceRequest() {
    }

    public String getPayerId() {
        return payerId;
    }

    public void setPayerId(String payerId) {
        this.payerId = payerId;
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

    public String getOrderId() {
        return orderId;
    }

    public void setOrderId(String orderId) {
        this.orderId = orderId;
    }

    public long getQuantity() {
        return quantity;
    }

    public void setQuantity(long quantity) {
        this.quantity = quantity;
    }

    public int getDays() {
        return days;
    }

    public void setDays(int days) {
        this.days = days;
    }

    public int getAccountNum() {
        return accountNum;
    }

    public void setAccountNum(int accountNum) {
        this.accountNum = accountNum;
    }

    public Date getAt() {
        return at;
    }

    public void setAt(Date at) {
        this.at = at;
    }

    public Map<String, String> getAttributes() {
        return attributes;
    }

    public void setAttributes(Map<String, String> attributes) {
        this.attributes = attributes;
    }

    @Override
    public String toString() {
        return "PriceRequest{"
            + "payerId=" + payerId
            + ", productCode=" + productCode
            + ", planCode=" + planCode
            + ", orderId=" + orderId
            + ", quantity=" + quantity
            + ", days=" + days
            + ", accountNum=" + accountNum
            + ", at=" + at
            + ", attributes=" + attributes
            + "}";
    }
}

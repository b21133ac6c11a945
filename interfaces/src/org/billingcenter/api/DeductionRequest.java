package org.billingcenter.api;

import java.util.Date;

/** A request to deduct one bill (outbound chargeAccount); idempotent on deductionId. */
public class DeductionRequest implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String deductionId;
    private long billId;
    private String payerId;
    private long amountFen;
    private String billDate;
    private String firstDay;
    private String lastDay;
    private Date createdAt;

    public DeductionRequest() {
    }

    public String getDeductionId() {
        return deductionId;
    }

    public void setDeductionId(String deductionId) {
        this.deductionId = deductionId;
    }

    public long getBillId() {
        return billId;
    }

    public void setBillId(long billId) {
        this.billId = billId;
    }

    public String getPayerId() {
        return payerId;
    }

    public void setPayerId(String payerId) {
        this.payerId = payerId;
    }

    public long getAmountFen() {
        return amountFen;
    }

    public void setAmountFen(long amountFen) {
        this.amountFen = amountFen;
    }

    public String getBillDate() {
        return billDate;
    }

    public void setBillDate(String billDate) {
        this.billDate = billDate;
    }

    public String getFirstDay() {
        return firstDay;
    }

    public void setFirstDay(String firstDay) {
        this.firstDay = firstDay;
    }

    public String getLastDay() {
        return lastDay;
    }

    public void setLastDay(String lastDay) {
        this.lastDay = lastDay;
    }

    public Date getCreatedAt() {
        return createdAt;
    }

    public void setCreatedAt(Date createdAt) {
        this.createdAt = createdAt;
    }

    @Override
    public String toString() {
        return "DeductionRequest{"
            + "deductionId=" + deductionId
            + ", billId=" + billId
            + ", payerId=" + payerId
            + ", amountFen=" + amountFen
            + ", billDate=" + billDate
            + ", firstDay=" + firstDay
            + ", lastDay=" + lastDay
            + ", createdAt=" + createdAt
            + "}";
    }
}

package org.billingcenter.api;

import java.util.Date;

/** The outcome of a deduction or a top-up, reported by the account system; idempotent on serial. */
public class PayNotice implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String serial;
    private String deductionId;
    private String payerId;
    private long amountFen;
    private String status;
    private Date paidAt;

    public PayNotice() {
    }

    public String getSerial() {
        return serial;
    }

    public void setSerial(String serial) {
        this.serial = serial;
    }

    public String getDeductionId() {
        return deductionId;
    }

    public void setDeductionId(String deductionId) {
        this.deductionId = deductionId;
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

    public String getStatus() {
        return status;
    }

    public void setStatus(String status) {
        this.status = status;
    }

    public Date getPaidAt() {
        return paidAt;
    }

    public void setPaidAt(Date paidAt) {
        this.paidAt = paidAt;
    }

    @Override
    public String toString() {
        return "PayNotice{"
            + "serial=" + serial
            + ", deductionId=" + deductionId
            + ", payerId=" + payerId
            + ", amountFen=" + amountFen
            + ", status=" + status
            + ", paidAt=" + paidAt
            + "}";
    }
}

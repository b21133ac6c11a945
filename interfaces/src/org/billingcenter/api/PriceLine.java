package org.billingcenter.api;


/** One line of a price quote; unitPrice is a decimal string in yuan, amountFen an integer. */
public class PriceLine implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String ruleId;
    private String description;
    private long units;
    private String unitPrice;
    private long amountFen;

    public PriceLine() {
    }

    public String getRuleId() {
        return ruleId;
    }

    public void setRuleId(String ruleId) {
        this.ruleId = ruleId;
    }

    public String getDescription() {
        return description;
    }

    public void setDescription(String description) {
        this.description = description;
    }

    public long getUnits() {
        return units;
    }

    public void setUnits(long units) {
        this.units = units;
    }

    public String getUnitPrice() {
        return unitPrice;
    }

    public void setUnitPrice(String unitPrice) {
        this.unitPrice = unitPrice;
    }

    public long getAmountFen() {
        return amountFen;
    }

    public void setAmountFen(long amountFen) {
        this.amountFen = amountFen;
    }

    @Override
    public String toString() {
        return "PriceLine{"
            + "ruleId=" + ruleId
            + ", description=" + description
            + ", units=" + units
            + ", unitPrice=" + unitPrice
            + ", amountFen=" + amountFen
            + "}";
    }
}

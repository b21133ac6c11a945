package org.billingcenter.api;

import java.util.List;

/** A price quote: the total in fen and the lines that make it up. */
public class PriceQuote implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private long totalFen;
    private String ruleSet;
    private String ruleSetVersion;
    private List<PriceLine> lines;

    public PriceQuote() {
    }

    public long getTotalFen() {
        return totalFen;
    }

    public void setTotalFen(long totalFen) {
        this.totalFen = totalFen;
    }

    public String getRuleSet() {
        return ruleSet;
    }

    public void setRuleSet(String ruleSet) {
        this.ruleSet = ruleSet;
    }

    public String getRuleSetVersion() {
        return ruleSetVersion;
    }

    public void setRuleSetVersion(String ruleSetVersion) {
        this.ruleSetVersion = ruleSetVersion;
    }

    public List<PriceLine> getLines() {
        return lines;
    }

    public void setLines(List<PriceLine> lines) {
        this.lines = lines;
    }

    @Override
    public String toString() {
        return "PriceQuote{"
            + "totalFen=" + totalFen
            + ", ruleSet=" + ruleSet
            + ", ruleSetVersion=" + ruleSetVersion
            + ", lines=" + lines
            + "}";
    }
}

package org.billingcenter.api;

import java.util.Date;

/** The answer to an accepted record; a repeat of the same record answers the same receipt. */
public class Receipt implements java.io.Serializable {
    private static final long serialVersionUID = 1L;

    private String key;
    private String status;
    private Date recordedAt;

    public Receipt() {
    }

    public String getKey() {
        return key;
    }

    public void setKey(String key) {
        this.key = key;
    }

    public String getStatus() {
        return status;
    }

    public void setStatus(String status) {
        this.status = status;
    }

    public Date getRecordedAt() {
        return recordedAt;
    }

    public void setRecordedAt(Date recordedAt) {
        this.recordedAt = recordedAt;
    }

    @Override
    public String toString() {
        return "Receipt{"
            + "key=" + key
            + ", status=" + status
            + ", recordedAt=" + recordedAt
            + "}";
    }
}

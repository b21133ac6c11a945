package org.billingcenter.api;

/**
 * A deliberate refusal by the billing center, carrying a stable {@link #getCode() code}
 * (for example {@code UNKNOWN_ORDER} or {@code DUPLICATE_CONFLICT}).
 */
public class BillingException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private String code;

    public BillingException() {
        super();
    }

    public BillingException(String code, String message) {
        super(message);
        this.code = code;
    }

    /** The stable fault code; see interfaces/README.md for the catalogue. */
    public String getCode() {
        return code;
    }
}

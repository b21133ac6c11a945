package org.billingcenter.api;

/**
 * What the billing center calls on a business system (outbound, Hessian over HTTP) to say
 * that a payer's order is stopped for arrears or reopened.
 *
 * <p>Implement it at the URL in {@code [feedback] url} (or {@code [feedback:PRODUCT] url}).
 * See interfaces/README.md, "Outbound calls".
 */
public interface BusinessService {
    /**
     * A payer's order is to be stopped ({@code action = "STOP"}) or reopened
     * ({@code "REOPEN"}). The same notice may arrive more than once: act once per
     * {@code noticeId}; notices of one order arrive in the order they were made.
     *
     * @return any value (e.g. {@code "1"}): the notice is accepted; a fault means it was
     *     not, and it will be sent again later
     */
    String feedbackUser(ServiceNotice notice);
}

package org.billingcenter.api;

/**
 * What the billing center calls on the account system (outbound, Hessian over HTTP).
 *
 * <p>Implement it in the account system, for example with Caucho's {@code HessianServlet},
 * at the URL in the billing center's {@code [account_system] url}. See interfaces/README.md,
 * "Outbound calls".
 */
public interface AccountService {
    /**
     * Deduct a bill. The deduction's outcome is reported later through
     * {@link BillingService#payCallback(PayNotice)} with the same {@code deductionId}.
     * The billing center may send the same request more than once (after a timeout or a
     * restart): deduct at most once per {@code deductionId}.
     *
     * @return any value (e.g. {@code "1"}): the request is accepted; a fault means it was
     *     not, and it will be sent again later
     */
    String chargeAccount(DeductionRequest request);
}

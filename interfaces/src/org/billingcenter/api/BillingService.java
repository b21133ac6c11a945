package org.billingcenter.api;

/**
 * The billing center's Hessian service, served at {@code POST /billing}.
 *
 * <p>Every mutating method is idempotent on the caller's key named in its DTO: a repeat
 * with the same content answers the same and changes nothing; a repeat with different
 * content throws {@link BillingException} with code {@code DUPLICATE_CONFLICT}.
 * The method catalogue with fault codes is interfaces/README.md.
 */
public interface BillingService {
    /** Record one per-use consumption (key: {@code opId}). */
    Receipt insertServiceOp(ServiceOp op);

    /** Mirror a new order line (key: {@code orderId}). */
    Receipt installOrder(Order order);

    /** Record a state change of an order (key: {@code eventId}). */
    Receipt updateOrderState(OrderStateChange change);

    /** Price a payer's product, quantity, days or account count under the rules in force. */
    PriceQuote getTotalPrice(PriceRequest request);

    /** The account system reports the outcome of a deduction or a top-up (key: {@code serial}). */
    Receipt payCallback(PayNotice notice);

    /**
     * A product line changed the number of authorized accounts of paying user {@code mmId}.
     *
     * @return {@code "1"} when the change is recorded (or was already the current count)
     */
    String changeAccountNum(String mmId, int currentNum, String productCode);
}

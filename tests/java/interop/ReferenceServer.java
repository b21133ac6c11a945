import com.caucho.hessian.server.HessianSkeleton;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import com.sun.net.httpserver.HttpServer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.billingcenter.api.BillingException;
import org.billingcenter.api.BillingService;
import org.billingcenter.api.Order;
import org.billingcenter.api.OrderStateChange;
import org.billingcenter.api.PayNotice;
import org.billingcenter.api.PriceLine;
import org.billingcenter.api.PriceQuote;
import org.billingcenter.api.PriceRequest;
import org.billingcenter.api.Receipt;
import org.billingcenter.api.ServiceOp;

/**
 * A test oracle, not the product: {@link BillingService} served by Caucho's own
 * {@link HessianSkeleton} (what a {@code HessianServlet} does), with a tiny in-memory
 * implementation of the contract's semantics.  Running {@link InteropClient} against it
 * proves that the client's expectations (exception classes, fault codes, typed DTOs) are
 * what real Caucho produces, so the same client is a fair judge of the Python server.
 *
 * <pre>
 * java ... ReferenceServer PORT [USER PASSWORD]
 * </pre>
 * Prints {@code reference listening on http://127.0.0.1:PORT/billing} once it listens.
 */
public final class ReferenceServer {

    private ReferenceServer() {
    }

    public static void main(String[] argv) throws Exception {
        // The JDK server writes headers and body separately; without TCP_NODELAY every reply
        // stalls ~40 ms (Nagle + delayed ACK), which InteropClient's latency check reports.
        System.setProperty("sun.net.httpserver.nodelay", "true");
        int port = Integer.parseInt(argv[0]);
        final String expectedAuth = argv.length >= 3
            ? "Basic " + Base64.getEncoder().encodeToString(
                (argv[1] + ":" + argv[2]).getBytes(StandardCharsets.UTF_8))
            : null;
        final HessianSkeleton skeleton = new HessianSkeleton(new Service(), BillingService.class);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 50);
        server.createContext("/billing", new HttpHandler() {
            public void handle(HttpExchange exchange) throws IOException {
                try {
                    if (expectedAuth != null && !expectedAuth.equals(
                            exchange.getRequestHeaders().getFirst("Authorization"))) {
                        exchange.getResponseHeaders().set("WWW-Authenticate",
                            "Basic realm=\"billing\"");
                        exchange.sendResponseHeaders(401, -1);
                        return;
                    }
                    ByteArrayOutputStream reply = new ByteArrayOutputStream();
                    try (InputStream in = exchange.getRequestBody()) {
                        skeleton.invoke(in, reply);
                    } catch (Throwable e) {
                        byte[] text = e.toString().getBytes(StandardCharsets.UTF_8);
                        exchange.sendResponseHeaders(500, text.length);
                        exchange.getResponseBody().write(text);
                        return;
                    }
                    exchange.getResponseHeaders().set("Content-Type", "application/x-hessian");
                    exchange.sendResponseHeaders(200, reply.size());
                    OutputStream out = exchange.getResponseBody();
                    out.write(reply.toByteArray());
                } finally {
                    exchange.close();
                }
            }
        });
        server.start();
        InetSocketAddress bound = server.getAddress();
        System.out.println("reference listening on http://127.0.0.1:" + bound.getPort()
            + "/billing");
        System.out.flush();
    }

    /** The contract's semantics in memory, just enough for InteropClient's checks. */
    static final class Service implements BillingService {
        private static final List<String> STATES =
            Arrays.asList("ACTIVE", "PAUSED", "RESUMED", "CANCELLED", "EXPIRED");
        private static final Map<String, List<String>> CATALOGUE = new HashMap<>();

        static {
            CATALOGUE.put("PC2", Arrays.asList("PC2-DAILY-ACCOUNTS"));
            CATALOGUE.put("SMS-NOTIFY", Arrays.asList("SMS-PER-USE", "SMS-TRIAL-100"));
            CATALOGUE.put("CRM-BASIC", Arrays.asList("CRM-DAILY", "CRM-TRIAL-7D"));
            CATALOGUE.put("VOICE", Arrays.asList("VOICE-6S", "VOICE-60S"));
        }

        private final Map<String, Order> orders = new HashMap<>();
        private final Map<String, String> contents = new HashMap<>();
        private final Map<String, Receipt> receipts = new HashMap<>();

        public synchronized Receipt installOrder(Order order) {
            List<String> plans = CATALOGUE.get(order.getProductCode());
            if (plans == null || (order.getPlanCode() != null && !order.getPlanCode().isEmpty()
                    && !plans.contains(order.getPlanCode()))) {
                throw new BillingException("UNKNOWN_PRODUCT", "product "
                    + order.getProductCode() + "/" + order.getPlanCode() + " is not in the catalogue");
            }
            Receipt r = record("order:" + order.getOrderId(), order.getOrderId(), order.toString());
            orders.put(order.getOrderId(), order);
            return r;
        }

        public synchronized Receipt updateOrderState(OrderStateChange change) {
            if (!STATES.contains(change.getState())) {
                throw new BillingException("INVALID_ARGUMENT", "state " + change.getState()
                    + " is not one of " + STATES);
            }
            if (!orders.containsKey(change.getOrderId())) {
                throw new BillingException("UNKNOWN_ORDER", "order '" + change.getOrderId()
                    + "' is unknown");
            }
            return record("event:" + change.getEventId(), change.getEventId(), change.toString());
        }

        public synchronized Receipt insertServiceOp(ServiceOp op) {
            Order order = orders.get(op.getOrderId());
            if (order == null) {
                throw new BillingException("UNKNOWN_ORDER", "order '" + op.getOrderId()
                    + "' is unknown");
            }
            if (op.getPayerId() != null && !op.getPayerId().isEmpty()
                    && !op.getPayerId().equals(order.getPayerId())) {
                throw new BillingException("INVALID_ARGUMENT", "payerId " + op.getPayerId()
                    + " is not the payer of order " + order.getOrderId());
            }
            String content = op.getOrderId() + "|" + op.getProductCode() + "|" + op.getUserId()
                + "|" + op.getQuantity() + "|" + op.getOccurredAt().getTime() + "|"
                + (op.getAttributes() == null ? "{}" : new TreeMap<>(op.getAttributes()));
            return record("op:" + op.getOpId(), op.getOpId(), content);
        }

        /** A stand-in for the shipped SMS rule (0.05 yuan per message, first tier only). */
        public PriceQuote getTotalPrice(PriceRequest request) {
            if (!"SMS-NOTIFY".equals(request.getProductCode())) {
                throw new BillingException("NO_RULE", "no published rule prices "
                    + request.getProductCode());
            }
            PriceLine line = new PriceLine();
            line.setRuleId("sms-per-use");
            line.setDescription("SMS per message");
            line.setUnits(request.getQuantity());
            line.setUnitPrice("0.05");
            line.setAmountFen(request.getQuantity() * 5L);
            PriceQuote quote = new PriceQuote();
            quote.setTotalFen(line.getAmountFen());
            quote.setRuleSet("saas-sms-notify");
            quote.setRuleSetVersion("2026.11.1");
            quote.setLines(java.util.Collections.singletonList(line));
            return quote;
        }

        public synchronized Receipt payCallback(PayNotice notice) {
            String deduction = notice.getDeductionId();
            if (deduction != null && !deduction.isEmpty()) {
                // This reference bills nothing, so every deduction id is unknown.
                throw new BillingException("UNKNOWN_DEDUCTION", "no bill has deduction "
                    + deduction);
            }
            Receipt r = record("payment:" + notice.getSerial(), notice.getSerial(),
                notice.getPayerId() + "|" + notice.getAmountFen() + "|" + notice.getStatus());
            r.setStatus("TOPUP");
            return r;
        }

        public synchronized String changeAccountNum(String mmId, int currentNum,
                                                    String productCode) {
            if (currentNum < 0) {
                throw new BillingException("INVALID_ARGUMENT", "currentNum must not be negative");
            }
            for (Order order : orders.values()) {
                if (order.getPayerId().equals(mmId)
                        && order.getProductCode().equals(productCode)) {
                    return "1";
                }
            }
            throw new BillingException("UNKNOWN_ORDER", "payer '" + mmId + "' has no order of "
                + productCode);
        }

        private Receipt record(String slot, String key, String content) {
            String seen = contents.get(slot);
            if (seen != null) {
                if (!seen.equals(content)) {
                    throw new BillingException("DUPLICATE_CONFLICT", slot
                        + " was recorded with different content");
                }
                return receipts.get(slot);
            }
            Receipt r = new Receipt();
            r.setKey(key);
            r.setStatus("RECORDED");
            r.setRecordedAt(new Date());
            contents.put(slot, content);
            receipts.put(slot, r);
            return r;
        }
    }
}

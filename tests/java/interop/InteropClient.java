import com.caucho.hessian.client.HessianProxyFactory;
import com.caucho.hessian.io.HessianServiceException;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.io.UnsupportedEncodingException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.UndeclaredThrowableException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
 * Calls a billing center exactly as an existing Java system does: through Caucho's
 * {@link HessianProxyFactory} and the interface in {@code interfaces/}.
 *
 * <pre>
 * java --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
 *      --add-opens java.base/java.math=ALL-UNNAMED \
 *      -cp hessian.jar:billingcenter-api.jar:DIR InteropClient \
 *      --url http://127.0.0.1:8080/billing --prefix run42 \
 *      [--mode default|hessian2|overload|hessian2+overload] [--user U --password P] \
 *      [--scenario full|unauthorized|forbidden]
 * </pre>
 *
 * <p>Scenarios: {@code full} exercises all six methods (keys start with the prefix, so each
 * run uses fresh keys); {@code unauthorized} expects the call to be refused with HTTP 401
 * (run it with a wrong password); {@code forbidden} expects {@code installOrder} to be
 * refused with {@code FORBIDDEN} (run it as a caller that may not call it).
 *
 * <p>Prints one line per check, {@code OK name detail} or {@code FAIL name detail}, and exits
 * 1 when any check failed (2 on bad arguments).
 */
public final class InteropClient {

    /** A method the server does not have, proxied at the same URL. */
    public interface UnknownMethods {
        String noSuchMethodForInterop(String value);
    }

    /** A check whose outcome is decided by throwing (or not). */
    private interface Check {
        String run() throws Throwable;
    }

    private static final long MINUTE = 60L * 1000L;

    private final PrintStream out;
    private final BillingService service;
    private final UnknownMethods unknown;
    private final String prefix;
    private final long now = System.currentTimeMillis();
    private int failures;
    private int checks;

    private InteropClient(PrintStream out, BillingService service, UnknownMethods unknown,
                          String prefix) {
        this.out = out;
        this.service = service;
        this.unknown = unknown;
        this.prefix = prefix;
    }

    public static void main(String[] argv) throws Exception {
        PrintStream out = utf8Stdout();
        Map<String, String> args;
        try {
            args = parseArgs(argv);
        } catch (IllegalArgumentException e) {
            out.println("usage error: " + e.getMessage());
            out.println("usage: InteropClient --url URL --prefix PREFIX [--mode MODE]"
                + " [--user USER --password PASSWORD] [--scenario full|unauthorized|forbidden]");
            System.exit(2);
            return;
        }
        String url = args.get("url");
        String mode = args.containsKey("mode") ? args.get("mode") : "default";
        String scenario = args.containsKey("scenario") ? args.get("scenario") : "full";

        HessianProxyFactory factory = new HessianProxyFactory();
        if ("hessian2".equals(mode)) {
            factory.setHessian2Request(true);
        } else if ("overload".equals(mode)) {
            factory.setOverloadEnabled(true);
        } else if ("hessian2+overload".equals(mode)) {
            factory.setHessian2Request(true);
            factory.setOverloadEnabled(true);
        } else if (!"default".equals(mode)) {
            out.println("usage error: unknown mode " + mode);
            System.exit(2);
            return;
        }
        if (args.containsKey("user")) {
            factory.setUser(args.get("user"));
            factory.setPassword(args.containsKey("password") ? args.get("password") : "");
        }
        factory.setConnectTimeout(10000);
        factory.setReadTimeout(15000);

        BillingService service = (BillingService) factory.create(BillingService.class, url);
        UnknownMethods unknown = (UnknownMethods) factory.create(UnknownMethods.class, url);
        InteropClient client = new InteropClient(out, service, unknown, args.get("prefix"));
        out.println("# InteropClient url=" + url + " mode=" + mode + " scenario=" + scenario
            + " user=" + (args.containsKey("user") ? args.get("user") : "-")
            + " java=" + System.getProperty("java.version"));

        if ("full".equals(scenario)) {
            client.full();
        } else if ("unauthorized".equals(scenario)) {
            client.unauthorized();
        } else if ("forbidden".equals(scenario)) {
            client.forbidden();
        } else {
            out.println("usage error: unknown scenario " + scenario);
            System.exit(2);
            return;
        }
        out.println("# " + client.checks + " checks, " + client.failures + " failed");
        out.flush();
        System.exit(client.failures == 0 ? 0 : 1);
    }

    // ---------------------------------------------------------------- scenarios

    private void full() {
        final String payer = prefix + "-payer";
        final String pc2Order = prefix + "-order-pc2";
        final String smsOrder = prefix + "-order-sms";
        final Date activated = new Date(now - 120 * MINUTE);

        // installOrder ------------------------------------------------------------
        final Order pc2 = order(pc2Order, payer, "张三😀", "PC2", "PC2-DAILY-ACCOUNTS", activated, 3);
        final Receipt[] first = new Receipt[1];
        check("installOrder", new Check() {
            public String run() throws Throwable {
                Receipt r = service.installOrder(pc2);
                first[0] = r;
                return requireReceipt(r, pc2Order);
            }
        });
        check("installOrder.repeat", new Check() {
            public String run() throws Throwable {
                Receipt r = service.installOrder(order(pc2Order, payer, "张三😀", "PC2",
                    "PC2-DAILY-ACCOUNTS", activated, 3));
                return requireSameReceipt(first[0], r);
            }
        });
        check("installOrder.conflict", new Check() {
            public String run() throws Throwable {
                return expectCode("DUPLICATE_CONFLICT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.installOrder(order(pc2Order, payer,
                            "李四", "PC2", "PC2-DAILY-ACCOUNTS", activated, 3)));
                    }
                });
            }
        });
        check("installOrder.unknownProduct", new Check() {
            public String run() throws Throwable {
                return expectCode("UNKNOWN_PRODUCT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.installOrder(order(prefix + "-order-nope",
                            payer, "张三", "NO-SUCH-PRODUCT", "", activated, 1)));
                    }
                });
            }
        });
        check("installOrder.unknownPlan", new Check() {
            public String run() throws Throwable {
                return expectCode("UNKNOWN_PRODUCT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.installOrder(order(prefix
                            + "-order-noplan", payer, "张三", "PC2", "SMS-PER-USE", activated, 1)));
                    }
                });
            }
        });
        check("installOrder.sms", new Check() {
            public String run() throws Throwable {
                return requireReceipt(service.installOrder(order(smsOrder, payer, "员工-王五",
                    "SMS-NOTIFY", "SMS-PER-USE", activated, 0)), smsOrder);
            }
        });

        // updateOrderState ----------------------------------------------------------
        final String pauseId = prefix + "-ev-pause";
        final Receipt[] paused = new Receipt[1];
        check("updateOrderState.paused", new Check() {
            public String run() throws Throwable {
                Receipt r = service.updateOrderState(
                    change(pauseId, pc2Order, "PAUSED", new Date(now - 90 * MINUTE)));
                paused[0] = r;
                return requireReceipt(r, pauseId);
            }
        });
        check("updateOrderState.resumed", new Check() {
            public String run() throws Throwable {
                return requireReceipt(service.updateOrderState(change(prefix + "-ev-resume",
                    pc2Order, "RESUMED", new Date(now - 80 * MINUTE))), prefix + "-ev-resume");
            }
        });
        check("updateOrderState.repeat", new Check() {
            public String run() throws Throwable {
                return requireSameReceipt(paused[0], service.updateOrderState(
                    change(pauseId, pc2Order, "PAUSED", new Date(now - 90 * MINUTE))));
            }
        });
        check("updateOrderState.conflict", new Check() {
            public String run() throws Throwable {
                return expectCode("DUPLICATE_CONFLICT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.updateOrderState(change(pauseId, pc2Order,
                            "CANCELLED", new Date(now - 90 * MINUTE))));
                    }
                });
            }
        });
        final String ghostOrder = prefix + "-无此订单😀";
        check("updateOrderState.unknownOrder", new Check() {
            public String run() throws Throwable {
                return expectCode("UNKNOWN_ORDER", ghostOrder, new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.updateOrderState(change(prefix
                            + "-ev-ghost", ghostOrder, "PAUSED", new Date(now - MINUTE))));
                    }
                });
            }
        });
        check("updateOrderState.badState", new Check() {
            public String run() throws Throwable {
                return expectCode("INVALID_ARGUMENT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.updateOrderState(change(prefix
                            + "-ev-frozen", pc2Order, "FROZEN", new Date(now - MINUTE))));
                    }
                });
            }
        });

        // insertServiceOp -----------------------------------------------------------
        final String opId = prefix + "-op-用量😀";
        final Map<String, String> attributes = new LinkedHashMap<String, String>();
        attributes.put("channel", "app");
        attributes.put("备注", "短信通知😀");
        final Receipt[] op = new Receipt[1];
        check("insertServiceOp", new Check() {
            public String run() throws Throwable {
                Receipt r = service.insertServiceOp(serviceOp(opId, smsOrder, "SMS-NOTIFY",
                    "员工-王五", "", 5L, new Date(now - 30 * MINUTE), attributes));
                op[0] = r;
                return requireReceipt(r, opId);
            }
        });
        check("insertServiceOp.repeat", new Check() {
            public String run() throws Throwable {
                Map<String, String> copy = new LinkedHashMap<String, String>();
                copy.put("备注", "短信通知😀");
                copy.put("channel", "app");
                return requireSameReceipt(op[0], service.insertServiceOp(serviceOp(opId,
                    smsOrder, "SMS-NOTIFY", "员工-王五", "", 5L, new Date(now - 30 * MINUTE),
                    copy)));
            }
        });
        check("insertServiceOp.conflict", new Check() {
            public String run() throws Throwable {
                return expectCode("DUPLICATE_CONFLICT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.insertServiceOp(serviceOp(opId, smsOrder,
                            "SMS-NOTIFY", "员工-王五", "", 6L, new Date(now - 30 * MINUTE),
                            attributes)));
                    }
                });
            }
        });
        check("insertServiceOp.explicitPayer", new Check() {
            public String run() throws Throwable {
                String id = prefix + "-op-payer";
                return requireReceipt(service.insertServiceOp(serviceOp(id, smsOrder,
                    "SMS-NOTIFY", "员工-王五", payer, 1L, new Date(now - 20 * MINUTE),
                    null)), id);
            }
        });
        check("insertServiceOp.otherPayer", new Check() {
            public String run() throws Throwable {
                return expectCode("INVALID_ARGUMENT", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.insertServiceOp(serviceOp(prefix
                            + "-op-other", smsOrder, "SMS-NOTIFY", "员工-王五", prefix + "-boss",
                            1L, new Date(now - 20 * MINUTE), null)));
                    }
                });
            }
        });
        check("insertServiceOp.unknownOrder", new Check() {
            public String run() throws Throwable {
                return expectCode("UNKNOWN_ORDER", ghostOrder, new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.insertServiceOp(serviceOp(prefix
                            + "-op-ghost", ghostOrder, "SMS-NOTIFY", "员工-王五", "", 1L,
                            new Date(now - MINUTE), null)));
                    }
                });
            }
        });

        // changeAccountNum ----------------------------------------------------------
        check("changeAccountNum", new Check() {
            public String run() throws Throwable {
                return requireEquals("1", service.changeAccountNum(payer, 5, "PC2"));
            }
        });
        check("changeAccountNum.repeat", new Check() {
            public String run() throws Throwable {
                return requireEquals("1", service.changeAccountNum(payer, 5, "PC2"));
            }
        });
        check("changeAccountNum.unknownOrder", new Check() {
            public String run() throws Throwable {
                return expectCode("UNKNOWN_ORDER", new Check() {
                    public String run() throws Throwable {
                        return service.changeAccountNum(prefix + "-nobody", 2, "PC2");
                    }
                });
            }
        });
        check("changeAccountNum.negative", new Check() {
            public String run() throws Throwable {
                return expectCode("INVALID_ARGUMENT", new Check() {
                    public String run() throws Throwable {
                        return service.changeAccountNum(payer, -1, "PC2");
                    }
                });
            }
        });

        // getTotalPrice: 10 SMS at 0.05 yuan under the published saas-sms-notify rules ----
        check("getTotalPrice", new Check() {
            public String run() throws Throwable {
                PriceRequest request = new PriceRequest();
                request.setPayerId(payer);
                request.setProductCode("SMS-NOTIFY");
                request.setPlanCode("SMS-PER-USE");
                request.setOrderId(smsOrder);
                request.setQuantity(10L);
                request.setAt(new Date(now));
                request.setAttributes(Collections.singletonMap("channel", "app"));
                return requireQuote(service.getTotalPrice(request), 50L, 10L, "0.05");
            }
        });
        check("getTotalPrice.noRule", new Check() {
            public String run() throws Throwable {
                return expectCode("NO_RULE", new Check() {
                    public String run() throws Throwable {
                        PriceRequest request = new PriceRequest();
                        request.setPayerId(payer);
                        request.setProductCode("NO-SUCH-PRODUCT");
                        request.setQuantity(1L);
                        request.setAt(new Date(now));
                        return String.valueOf(service.getTotalPrice(request));
                    }
                });
            }
        });

        // payCallback -----------------------------------------------------------------
        check("payCallback", new Check() {
            public String run() throws Throwable {
                // A top-up (no deductionId) for the payer: accepted, outcome TOPUP.
                PayNotice notice = new PayNotice();
                notice.setSerial(prefix + "-topup-1");
                notice.setDeductionId("");
                notice.setPayerId(payer);
                notice.setAmountFen(12345L);
                notice.setStatus("SUCCESS");
                notice.setPaidAt(new Date(now - MINUTE));
                Receipt r = service.payCallback(notice);
                if (!"TOPUP".equals(r.getStatus())) {
                    throw new AssertionError("expected status TOPUP, got " + r);
                }
                return requireSameReceipt(r, service.payCallback(notice));
            }
        });
        check("payCallback.unknownDeduction", new Check() {
            public String run() throws Throwable {
                return expectCode("UNKNOWN_DEDUCTION", new Check() {
                    public String run() throws Throwable {
                        PayNotice notice = new PayNotice();
                        notice.setSerial(prefix + "-pay-1");
                        notice.setDeductionId(prefix + "-no-such-deduction");
                        notice.setPayerId(payer);
                        notice.setAmountFen(12345L);
                        notice.setStatus("SUCCESS");
                        notice.setPaidAt(new Date(now - MINUTE));
                        return String.valueOf(service.payCallback(notice));
                    }
                });
            }
        });

        // unknown method --------------------------------------------------------------
        check("unknownMethod", new Check() {
            public String run() throws Throwable {
                try {
                    String answer = unknown.noSuchMethodForInterop("x");
                    throw new AssertionError("expected a NoSuchMethodException fault, got "
                        + answer);
                } catch (UndeclaredThrowableException e) {
                    // The proxy is a java.lang.reflect.Proxy: the checked
                    // HessianServiceException that Caucho makes of a fault without an
                    // exception detail arrives wrapped, because the method declares none.
                    Throwable cause = e.getUndeclaredThrowable();
                    if (!(cause instanceof HessianServiceException)) {
                        throw new AssertionError("expected HessianServiceException inside "
                            + "UndeclaredThrowableException, got " + describe(cause));
                    }
                    HessianServiceException fault = (HessianServiceException) cause;
                    if (!"NoSuchMethodException".equals(fault.getCode())) {
                        throw new AssertionError("expected fault code NoSuchMethodException, got "
                            + describe(fault));
                    }
                    return "UndeclaredThrowableException(" + describe(fault) + ")";
                }
            }
        });

        // latency: a reply written in two TCP writes costs ~40 ms per call (Nagle + delayed ACK)
        check("latency", new Check() {
            public String run() throws Throwable {
                long[] samples = new long[20];
                for (int i = 0; i < samples.length; i++) {
                    long t0 = System.nanoTime();
                    service.changeAccountNum(payer, 5, "PC2");
                    samples[i] = (System.nanoTime() - t0) / 1000L;
                }
                Arrays.sort(samples);
                long median = samples[samples.length / 2];
                String detail = "median " + median + " us, max " + samples[samples.length - 1]
                    + " us over " + samples.length + " calls";
                if (median > 35000L) {
                    throw new AssertionError(detail + " (a split write under Nagle?)");
                }
                return detail;
            }
        });
    }

    private void unauthorized() {
        check("unauthorized", new Check() {
            public String run() throws Throwable {
                try {
                    String answer = service.changeAccountNum(prefix + "-payer", 1, "PC2");
                    throw new AssertionError("expected HTTP 401, got an answer: " + answer);
                } catch (BillingException e) {
                    throw new AssertionError("expected HTTP 401, got a fault: " + describe(e));
                } catch (RuntimeException e) {
                    // HessianConnectionException("401: java.io.IOException: Server returned
                    // HTTP response code: 401 for URL: ...")
                    String text = String.valueOf(e.getMessage());
                    if (!text.contains("401")) {
                        throw new AssertionError("expected a 401 in the exception, got "
                            + describe(e));
                    }
                    return describe(e);
                }
            }
        });
    }

    private void forbidden() {
        check("forbidden", new Check() {
            public String run() throws Throwable {
                return expectCode("FORBIDDEN", new Check() {
                    public String run() throws Throwable {
                        return String.valueOf(service.installOrder(order(prefix + "-order-f",
                            prefix + "-payer", "张三", "PC2", "PC2-DAILY-ACCOUNTS",
                            new Date(now - MINUTE), 1)));
                    }
                });
            }
        });
    }

    // ---------------------------------------------------------------- helpers

    private void check(String name, Check check) {
        checks++;
        String detail;
        try {
            detail = check.run();
        } catch (AssertionError e) {
            failures++;
            out.println("FAIL " + name + " " + e.getMessage());
            return;
        } catch (Throwable e) {
            failures++;
            out.println("FAIL " + name + " unexpected " + describe(e));
            e.printStackTrace(out);
            return;
        }
        out.println("OK " + name + " " + detail);
    }

    private static String expectCode(String code, Check call) throws Throwable {
        return expectCode(code, null, call);
    }

    /** Runs the call and expects a BillingException with this code (and naming the text). */
    private static String expectCode(String code, String named, Check call) throws Throwable {
        String answer;
        try {
            answer = call.run();
        } catch (BillingException e) {
            if (!code.equals(e.getCode())) {
                throw new AssertionError("expected code " + code + ", got " + describe(e));
            }
            if (e.getMessage() == null || e.getMessage().isEmpty()) {
                throw new AssertionError("code " + code + " arrived without a message");
            }
            if (named != null && !e.getMessage().contains(named)) {
                throw new AssertionError("message does not name " + named + ": " + describe(e));
            }
            return describe(e);
        }
        throw new AssertionError("expected BillingException " + code + ", got " + answer);
    }

    /** A typed PriceQuote of one typed PriceLine with these figures. */
    private static String requireQuote(Object value, long totalFen, long units,
                                       String unitPrice) {
        if (!(value instanceof PriceQuote)) {
            throw new AssertionError("expected a PriceQuote, got "
                + (value == null ? "null" : value.getClass().getName() + " " + value));
        }
        PriceQuote quote = (PriceQuote) value;
        if (quote.getTotalFen() != totalFen || quote.getRuleSet() == null
            || quote.getRuleSetVersion() == null || quote.getLines() == null
            || quote.getLines().size() != 1) {
            throw new AssertionError("unexpected quote " + quote);
        }
        Object first = quote.getLines().get(0);
        if (!(first instanceof PriceLine)) {
            throw new AssertionError("expected a PriceLine, got " + first.getClass().getName());
        }
        PriceLine line = (PriceLine) first;
        if (line.getUnits() != units || !unitPrice.equals(line.getUnitPrice())
            || line.getAmountFen() != totalFen) {
            throw new AssertionError("unexpected line " + line);
        }
        return quote.getClass().getName() + " " + quote;
    }

    private static String requireReceipt(Object value, String key) {
        if (!(value instanceof Receipt)) {
            throw new AssertionError("expected a Receipt, got "
                + (value == null ? "null" : value.getClass().getName() + " " + value));
        }
        Receipt r = (Receipt) value;
        if (!key.equals(r.getKey())) {
            throw new AssertionError("receipt key " + r.getKey() + " != " + key);
        }
        if (r.getStatus() == null || r.getStatus().isEmpty()) {
            throw new AssertionError("receipt without status: " + r);
        }
        if (r.getRecordedAt() == null || r.getRecordedAt().getTime() < 946684800000L) {
            throw new AssertionError("receipt without a sensible recordedAt: " + r);
        }
        return r.getClass().getName() + " " + r;
    }

    private static String requireSameReceipt(Receipt first, Object value) {
        if (first == null) {
            throw new AssertionError("no first receipt to compare with");
        }
        requireReceipt(value, first.getKey());
        Receipt r = (Receipt) value;
        if (!first.getStatus().equals(r.getStatus())
            || !first.getRecordedAt().equals(r.getRecordedAt())) {
            throw new AssertionError("repeat answered " + r + ", first answer was " + first);
        }
        return r.getClass().getName() + " " + r + " equals the first receipt";
    }

    private static String requireEquals(String expected, Object value) {
        if (!expected.equals(value)) {
            throw new AssertionError("expected " + expected + ", got "
                + (value == null ? "null" : value.getClass().getName() + " " + value));
        }
        return value.getClass().getName() + " \"" + value + "\"";
    }

    private static String describe(Throwable e) {
        if (e == null) {
            return "null";
        }
        StringBuilder text = new StringBuilder(e.getClass().getName());
        if (e instanceof BillingException) {
            text.append(" code=").append(((BillingException) e).getCode());
        } else if (e instanceof HessianServiceException) {
            text.append(" code=").append(((HessianServiceException) e).getCode());
            text.append(" detail=").append(((HessianServiceException) e).getDetail());
        }
        text.append(" message=").append(e.getMessage());
        Throwable cause = e.getCause();
        if (e instanceof InvocationTargetException) {
            cause = ((InvocationTargetException) e).getTargetException();
        }
        if (cause != null && cause != e) {
            text.append(" cause=[").append(describe(cause)).append("]");
        }
        return text.toString();
    }

    private static Order order(String orderId, String payerId, String userId, String product,
                               String plan, Date activatedAt, int accountNum) {
        Order o = new Order();
        o.setOrderId(orderId);
        o.setPayerId(payerId);
        o.setUserId(userId);
        o.setProductCode(product);
        o.setPlanCode(plan);
        o.setActivatedAt(activatedAt);
        o.setAccountNum(accountNum);
        return o;
    }

    private static OrderStateChange change(String eventId, String orderId, String state,
                                           Date changedAt) {
        OrderStateChange c = new OrderStateChange();
        c.setEventId(eventId);
        c.setOrderId(orderId);
        c.setState(state);
        c.setChangedAt(changedAt);
        return c;
    }

    private static ServiceOp serviceOp(String opId, String orderId, String product, String userId,
                                       String payerId, long quantity, Date occurredAt,
                                       Map<String, String> attributes) {
        ServiceOp op = new ServiceOp();
        op.setOpId(opId);
        op.setOrderId(orderId);
        op.setProductCode(product);
        op.setItemCode("SMS");
        op.setUserId(userId);
        op.setPayerId(payerId);
        op.setQuantity(quantity);
        op.setOccurredAt(occurredAt);
        op.setAttributes(attributes);
        return op;
    }

    private static Map<String, String> parseArgs(String[] argv) {
        Map<String, String> args = new LinkedHashMap<String, String>();
        List<String> known = new ArrayList<String>(
            Arrays.asList("url", "prefix", "mode", "user", "password", "scenario"));
        for (int i = 0; i < argv.length; i++) {
            String arg = argv[i];
            if (!arg.startsWith("--") || !known.contains(arg.substring(2))) {
                throw new IllegalArgumentException("unknown argument " + arg);
            }
            if (i + 1 >= argv.length) {
                throw new IllegalArgumentException(arg + " needs a value");
            }
            args.put(arg.substring(2), argv[++i]);
        }
        if (!args.containsKey("url") || !args.containsKey("prefix")) {
            throw new IllegalArgumentException("--url and --prefix are required");
        }
        return args;
    }

    private static PrintStream utf8Stdout() {
        try {
            return new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        } catch (UnsupportedEncodingException e) {
            throw new IllegalStateException(e);
        }
    }
}

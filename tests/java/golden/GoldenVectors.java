package golden;

import com.caucho.hessian.client.AbstractHessianConnection;
import com.caucho.hessian.client.HessianConnection;
import com.caucho.hessian.client.HessianConnectionFactory;
import com.caucho.hessian.client.HessianProxyFactory;
import com.caucho.hessian.io.Hessian2Output;
import com.caucho.hessian.io.HessianOutput;
import com.caucho.hessian.server.HessianSkeleton;
import golden.GoldenVectors.Pojo;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.HashMap;
import java.util.Hashtable;
import java.util.LinkedHashMap;
import java.util.LinkedList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes the bytes Caucho's Hessian library (Debian libhessian-java 4.0.38) produces for every
 * form billingcenter's Python codec must match, as one JSON file of named vectors.
 *
 * <p>Usage: {@code java --add-opens ... golden.GoldenVectors OUT.json}, or
 * {@code python -m tests.hessian.caucho OUT.json}, which compiles and runs it. The java-marked
 * Python test does the same and compares the output with the committed vectors
 * (tests/hessian/golden/caucho-4.0.38.json); the vector names below are the keys of
 * tests/hessian/golden_cases.py, so change the two together.
 */
public final class GoldenVectors {
    /** Vectors up to this many bytes are stored as hex; longer ones by length and SHA-256. */
    private static final int INLINE_LIMIT = 4096;

    /** 2024-01-01T00:00:00Z, a whole minute. */
    static final long MINUTE_MS = 1704067200000L;

    private final List<String> lines = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            throw new IllegalArgumentException("usage: GoldenVectors OUT.json");
        }
        // The skeleton logs every service exception; keep the generator's output quiet.
        java.util.logging.LogManager.getLogManager().reset();
        GoldenVectors g = new GoldenVectors();
        g.values();
        g.refs();
        g.objects();
        g.randomMessages();
        g.calls();
        g.replies();
        g.proxies();
        g.write(args[0]);
    }

    // ---------------------------------------------------------------- helpers

    /** ASCII text of n chars cycling through a fixed alphabet (mirrored in the Python tests). */
    static String text(int n) {
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append(alphabet.charAt(i % alphabet.length()));
        }
        return sb.toString();
    }

    /** n chars cycling through CJK, Latin-1 and ASCII (1, 2 and 3 byte UTF-8). */
    static String mixedText(int n) {
        String alphabet = "计费中心aé";
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append(alphabet.charAt(i % alphabet.length()));
        }
        return sb.toString();
    }

    /** n bytes of the pattern (7 * i + 3) mod 256 (mirrored in the Python tests). */
    static byte[] blob(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (7 * i + 3);
        }
        return b;
    }

    private void add(String name, byte[] bytes) throws Exception {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"name\": \"").append(name).append("\", \"length\": ").append(bytes.length);
        if (bytes.length <= INLINE_LIMIT) {
            sb.append(", \"hex\": \"").append(hex(bytes)).append('"');
        } else {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(bytes);
            sb.append(", \"sha256\": \"").append(hex(digest)).append('"');
        }
        sb.append('}');
        lines.add(sb.toString());
    }

    private static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 2);
        for (byte b : bytes) {
            sb.append(Character.forDigit((b >> 4) & 0xf, 16)).append(Character.forDigit(b & 0xf, 16));
        }
        return sb.toString();
    }

    private void write(String path) throws IOException {
        try (Writer w = new OutputStreamWriter(new java.io.FileOutputStream(path), StandardCharsets.UTF_8)) {
            w.write("{\"generator\": \"tests/java/golden/GoldenVectors.java\",\n");
            w.write(" \"library\": \"Caucho Hessian 4.0.38 (Debian libhessian-java)\",\n");
            w.write(" \"vectors\": [\n");
            for (int i = 0; i < lines.size(); i++) {
                w.write(lines.get(i));
                w.write(i + 1 < lines.size() ? ",\n" : "\n");
            }
            w.write("]}\n");
        }
    }

    static byte[] h1(Object value) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        HessianOutput out = new HessianOutput(bos);
        out.writeObject(value);
        out.flush();
        return bos.toByteArray();
    }

    static byte[] h2(Object value) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        Hessian2Output out = new Hessian2Output(bos);
        out.writeObject(value);
        out.close();
        return bos.toByteArray();
    }

    /** One value written standalone by HessianOutput (h1) and by Hessian2Output (h2). */
    private void value(String name, Object value) throws Exception {
        add("value/h1/" + name, h1(value));
        add("value/h2/" + name, h2(value));
    }

    @SafeVarargs
    static <T> ArrayList<T> list(T... items) {
        return new ArrayList<>(Arrays.asList(items));
    }

    // ---------------------------------------------------------------- values

    private void values() throws Exception {
        value("null", null);
        value("true", Boolean.TRUE);
        value("false", Boolean.FALSE);

        int[] ints = {0, 1, -16, -17, 47, 48, -2048, -2049, 2047, 2048,
            -262144, -262145, 262143, 262144, Integer.MIN_VALUE, Integer.MAX_VALUE};
        for (int i : ints) {
            value("int/" + i, Integer.valueOf(i));
        }
        long[] longs = {0, 1, -8, -9, 15, 16, -2048, -2049, 2047, 2048,
            -262144, -262145, 262143, 262144, Integer.MIN_VALUE, Integer.MAX_VALUE,
            Integer.MIN_VALUE - 1L, Integer.MAX_VALUE + 1L, Long.MIN_VALUE, Long.MAX_VALUE};
        for (long l : longs) {
            value("long/" + l, Long.valueOf(l));
        }
        double[] doubles = {0.0, -0.0, 1.0, -1.0, 2.0, -128.0, 127.0, -129.0, 128.0,
            -32768.0, 32767.0, -32769.0, 32768.0, 12.25, 0.001, 1.5, -2.75, 0.1, 3.14159,
            2147483.647, 2147483.648, 1e300, 1e-300, Double.MIN_VALUE, Double.MAX_VALUE,
            Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY};
        for (double d : doubles) {
            value("double/" + d, Double.valueOf(d));
        }

        long[] dates = {0L, MINUTE_MS, MINUTE_MS + 123, MINUTE_MS + 1000, -60000L, -1L,
            253402300740000L, 253402300799999L};
        for (long t : dates) {
            value("date/" + t, new Date(t));
        }

        value("string/empty", "");
        int[] lengths = {1, 31, 32, 1023, 1024, 1025, 4096, 32767, 32768, 32769, 65536, 70000};
        for (int n : lengths) {
            value("string/ascii/" + n, text(n));
        }
        value("string/chinese", "计费中心");
        value("string/latin1", "héllo wörld");
        value("string/emoji", "😀");
        value("string/emoji_mixed", "a😀b计");
        value("string/nul", "a\u0000b");
        value("string/mixed/1024", mixedText(1024));
        value("string/mixed/40000", mixedText(40000));
        // A surrogate pair straddling the first 0x8000-unit chunk boundary.
        value("string/emoji_at_chunk_boundary", text(0x7fff) + "😀" + text(5));
        value("string/emoji_after_chunk_boundary", text(0x8000) + "😀" + text(5));

        int[] blobs = {0, 1, 15, 16, 255, 1023, 1024, 4093, 8189, 8190, 70000};
        for (int n : blobs) {
            value("binary/" + n, blob(n));
        }

        value("list/empty", new ArrayList<Object>());
        value("list/mixed", list(1, "two", 3L, 4.5, Boolean.TRUE, null));
        value("list/seven", list(0, 1, 2, 3, 4, 5, 6));
        value("list/eight", list(0, 1, 2, 3, 4, 5, 6, 7));
        value("list/nested", list(list(1, 2), new ArrayList<Object>(), list("x")));
        value("list/linked", new LinkedList<Object>(list("a", "b")));
        value("list/int_array", new int[] {1, 2, 3});
        value("list/int_array_empty", new int[0]);
        value("list/int_array_ten", new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        value("list/long_array", new long[] {1L, 2L});
        value("list/double_array", new double[] {1.5, 0.0});
        value("list/boolean_array", new boolean[] {true, false});
        value("list/string_array", new String[] {"a", "b"});
        value("list/object_array", new Object[] {1, "a"});

        value("map/empty", new HashMap<Object, Object>());
        HashMap<Object, Object> one = new HashMap<>();
        one.put("a", 1);
        value("map/one", one);
        HashMap<Object, Object> intKeys = new HashMap<>();
        intKeys.put(1, "one");
        intKeys.put(2, "two");
        value("map/int_keys", intKeys);
        Hashtable<Object, Object> table = new Hashtable<>();
        table.put("k", "v");
        value("map/hashtable", table);
        TreeMap<Object, Object> tree = new TreeMap<>();
        tree.put("a", 1);
        tree.put("b", 2L);
        value("map/treemap", tree);
        LinkedHashMap<Object, Object> linked = new LinkedHashMap<>();
        linked.put("z", 1);
        linked.put("a", 2);
        value("map/linked", linked);
        HashMap<Object, Object> nested = new HashMap<>();
        nested.put("list", list(1));
        HashMap<Object, Object> inner = new HashMap<>();
        inner.put("x", null);
        nested.put("map", inner);
        value("map/nested", nested);
    }

    private void refs() throws Exception {
        ArrayList<Object> shared = list(1);
        value("ref/same_list_twice", list(shared, shared));
        HashMap<Object, Object> sharedMap = new HashMap<>();
        sharedMap.put("k", 1);
        value("ref/after_empty_containers",
            list(new ArrayList<Object>(), new HashMap<Object, Object>(), new int[0], sharedMap, sharedMap));
        ArrayList<Object> self = new ArrayList<>();
        self.add("me");
        self.add(self);
        value("ref/self_list", self);
        HashMap<Object, Object> selfMap = new HashMap<>();
        selfMap.put("self", selfMap);
        value("ref/self_map", selfMap);
    }

    static Pojo pojo() {
        Pojo p = new Pojo();
        p.name = "张三";
        p.count = 7;
        p.amount = 1234567890123L;
        p.created = new Date(MINUTE_MS + 123);
        p.tags = list("a", "b");
        p.attrs = new LinkedHashMap<>();
        p.attrs.put("x", 1);
        p.active = true;
        p.ratio = 0.5;
        p.optionalAmount = 42L;
        return p;
    }

    private void objects() throws Exception {
        value("object/pojo", pojo());
        value("object/pojo_nulls", new Pojo());
        Pojo second = new Pojo();
        second.name = "second";
        second.count = -1;
        value("object/two_pojos", list(pojo(), second));
        Pojo same = pojo();
        value("object/same_pojo_twice", list(same, same));
        Pojo parent = pojo();
        parent.child = second;
        value("object/nested_pojo", parent);
        Pojo loop = new Pojo();
        loop.name = "loop";
        loop.child = loop;
        value("object/self_pojo", loop);
        value("object/pojo_then_map", list(pojo(), one()));
    }

    static HashMap<Object, Object> one() {
        HashMap<Object, Object> m = new HashMap<>();
        m.put("a", 1);
        return m;
    }

    // ---------------------------------------------------------------- random messages

    /** A 64-bit LCG whose every step the Python tests repeat exactly. */
    static final class Rng {
        private long x;

        Rng(long seed) {
            x = seed;
        }

        int next(int bound) {
            x = x * 6364136223846793005L + 1442695040888963407L;
            return (int) ((x >>> 33) % bound);
        }
    }

    /** One random item; containers nest at most two levels. */
    static Object randomItem(Rng r, int depth) {
        switch (r.next(depth > 1 ? 9 : 11)) {
            case 0:
                return r.next(1 << 20) - (1 << 19);
            case 1:
                return (long) r.next(1 << 30) * 4096L;
            case 2:
                return text(r.next(3000));
            case 3:
                return mixedText(r.next(3000));
            case 4:
                return blob(r.next(3000));
            case 5:
                return new Date(MINUTE_MS + r.next(100000) * 1000L);
            case 6:
                return r.next(1000000) / 1000.0;
            case 7:
                return r.next(2) == 0 ? null : Boolean.TRUE;
            case 8: {
                Pojo p = pojo();
                p.count = r.next(100);
                return p;
            }
            case 9: {
                ArrayList<Object> list = new ArrayList<>();
                int n = r.next(6);
                for (int i = 0; i < n; i++) {
                    list.add(randomItem(r, depth + 1));
                }
                return list;
            }
            default: {
                LinkedHashMap<Object, Object> map = new LinkedHashMap<>();
                int n = r.next(4);
                for (int i = 0; i < n; i++) {
                    map.put("k" + i, randomItem(r, depth + 1));
                }
                return map;
            }
        }
    }

    /** Long mixed messages whose blobs land all over Caucho's 8 KiB buffer. */
    private void randomMessages() throws Exception {
        for (int i = 0; i < 12; i++) {
            Rng r = new Rng(i);
            ArrayList<Object> items = new ArrayList<>();
            for (int j = 0; j < 40; j++) {
                items.add(randomItem(r, 0));
            }
            value("random/" + i, items);
        }
        // A blob after text that ends near the end of the buffer.
        value("binary/after_text_split", list(text(8100), blob(100)));
        value("binary/after_text_quirk", list(text(8172), blob(14)));
    }

    // ---------------------------------------------------------------- calls

    private static Object[] mixedArgs() {
        return new Object[] {"s", 5, 7L, 2.5, new Date(MINUTE_MS), null, list("x", 1), pojo()};
    }

    private void call(String name, String method, Object[] args) throws Exception {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        HessianOutput v1 = new HessianOutput(bos);
        v1.call(method, args);
        v1.flush();
        add("call/c1/" + name, bos.toByteArray());

        bos = new ByteArrayOutputStream();
        HessianOutput v1v2 = new HessianOutput(bos);
        v1v2.setVersion(2);
        v1v2.call(method, args);
        v1v2.flush();
        add("call/c2/" + name, bos.toByteArray());

        bos = new ByteArrayOutputStream();
        Hessian2Output v2 = new Hessian2Output(bos);
        v2.call(method, args);
        v2.close();
        add("call/H2/" + name, bos.toByteArray());
    }

    private void calls() throws Exception {
        call("add", "add", new Object[] {1, 2});
        call("no_args", "ping", new Object[0]);
        call("mixed", "store", mixedArgs());
        call("unicode_method", "计费", new Object[] {"😀"});
        call("shared_arg", "pair", new Object[] {same(), same()});
        Pojo p = pojo();
        call("same_arg_twice", "pair", new Object[] {p, p});
        call("long_string", "echo", new Object[] {text(70000)});
        call("binary", "upload", new Object[] {blob(20000)});
    }

    private static final ArrayList<Object> SAME = list(1, 2);

    private static ArrayList<Object> same() {
        return SAME;
    }

    // ---------------------------------------------------------------- replies

    private HessianSkeleton skeleton() {
        return new HessianSkeleton(new GoldenServiceImpl(), GoldenService.class);
    }

    private byte[] invoke(byte[] request) throws Exception {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        skeleton().invoke(new ByteArrayInputStream(request), bos);
        return bos.toByteArray();
    }

    private byte[] request(String version, String method, Object[] args) throws IOException {
        ByteArrayOutputStream bos = new ByteArrayOutputStream();
        if (version.equals("H2")) {
            Hessian2Output out = new Hessian2Output(bos);
            out.call(method, args);
            out.close();
        } else {
            HessianOutput out = new HessianOutput(bos);
            if (version.equals("c2")) {
                out.setVersion(2);
            }
            out.call(method, args);
            out.flush();
        }
        return bos.toByteArray();
    }

    /** The skeleton's answer to a call written in each call version. */
    private void reply(String name, String method, Object... args) throws Exception {
        for (String version : new String[] {"c1", "c2", "H2"}) {
            add("reply/" + version + "/" + name, invoke(request(version, method, args)));
        }
    }

    private void replies() throws Exception {
        reply("int", "add", 1, 2);
        reply("null", "ping");
        reply("string", "echo", "计费😀");
        reply("long", "total", list(1L, 2L, 3L));
        reply("date", "when", new Date(MINUTE_MS + 5));
        reply("pojo", "echoPojo", pojo());
        reply("pojo_list", "pojos", 2);
        reply("binary", "blob", 70000);
        reply("binary_small", "blob", 100);
        reply("text", "text", 70000);
        reply("text_then_binary", "textThenBlob", 9000, 20000);
        reply("text_then_small_binary", "textThenBlob", 8168, 20);
        reply("mixed_then_binary", "mixedThenBlob", 40000, 100);
        reply("runtime_exception", "fail", "boom <&>");
        reply("coded_exception", "failCoded", "E_LIMIT");
        reply("unknown_method", "nope", 1);
        add("reply/H2/arg_count_mismatch", invoke(request("H2", "add", new Object[] {1})));
    }

    // ---------------------------------------------------------------- proxies

    /** Runs HessianProxy against the skeleton in memory, recording both directions. */
    private void proxyCalls(String mode, HessianProxyFactory factory) throws Exception {
        Recorder recorder = new Recorder(skeleton());
        factory.setConnectionFactory(recorder);
        ExtendedService proxy = (ExtendedService) factory.create(ExtendedService.class, "http://golden.invalid/billing");
        String prefix = "proxy/" + mode + "/";

        proxy.add(1, 2);
        recorder.save(this, prefix + "add");
        proxy.ping();
        recorder.save(this, prefix + "ping");
        proxy.echo("计费😀");
        recorder.save(this, prefix + "echo");
        try {
            proxy.echoPojo(pojo());
        } catch (RuntimeException e) {
            // A Hessian 1 reply carrying an object cannot be read by the 4.0.38 client.
        }
        recorder.save(this, prefix + "echo_pojo");
        proxy.store("s", 5, 7L, 2.5, new Date(MINUTE_MS), null, list("x", 1), pojo());
        recorder.save(this, prefix + "store");
        try {
            proxy.fail("boom <&>");
        } catch (RuntimeException e) {
            // Expected: the fault is what is recorded.
        }
        recorder.save(this, prefix + "fail");
        try {
            proxy.missing(1);
        } catch (RuntimeException e) {
            // Expected: NoSuchMethodException fault.
        }
        recorder.save(this, prefix + "missing");
    }

    private void proxies() throws Exception {
        proxyCalls("default", new HessianProxyFactory());

        HessianProxyFactory h2 = new HessianProxyFactory();
        h2.setHessian2Request(true);
        proxyCalls("hessian2_request", h2);

        HessianProxyFactory h1 = new HessianProxyFactory();
        h1.setHessian2Reply(false);
        proxyCalls("hessian1_reply", h1);

        HessianProxyFactory overload = new HessianProxyFactory();
        overload.setOverloadEnabled(true);
        Recorder recorder = new Recorder(skeleton());
        overload.setConnectionFactory(recorder);
        ExtendedService proxy = (ExtendedService) overload.create(ExtendedService.class, "http://golden.invalid/billing");
        try {
            proxy.store("s", 5, 7L, 2.5, new Date(MINUTE_MS), null, list("x", 1), pojo());
        } catch (RuntimeException e) {
            // The mangled name is unknown to a skeleton without overloads: a fault.
        }
        recorder.save(this, "proxy/overload/store");
    }

    /** A small DTO with every field kind the billing DTOs use; public for the client proxy. */
    public static final class Pojo implements java.io.Serializable {
        String name;
        int count;
        long amount;
        Date created;
        List<String> tags;
        Map<String, Integer> attrs;
        boolean active;
        double ratio;
        Long optionalAmount;
        Pojo child;
    }

    /** The test service; public because the skeleton invokes it reflectively. */
    public interface GoldenService {
        int add(int a, int b);

        void ping();

        String echo(String s);

        long total(List<Long> amounts);

        Date when(Date d);

        Pojo echoPojo(Pojo p);

        List<Pojo> pojos(int n);

        byte[] blob(int n);

        String text(int n);

        List<Object> textThenBlob(int chars, int bytes);

        List<Object> mixedThenBlob(int chars, int bytes);

        String store(String s, int i, long l, double d, Date t, Object nothing, List<Object> list, Pojo p);

        String fail(String message);

        String failCoded(String code);
    }

    /** What a newer client might call: one unknown method and an overload of add. */
    public interface ExtendedService extends GoldenService {
        String missing(int x);

        int add(int a);
    }

    /** An in-memory HTTP stand-in: hands the request to a skeleton and keeps both byte streams. */
    static final class Recorder implements HessianConnectionFactory {
        private final HessianSkeleton skeleton;
        byte[] request;
        byte[] reply;

        Recorder(HessianSkeleton skeleton) {
            this.skeleton = skeleton;
        }

        @Override
        public void setHessianProxyFactory(HessianProxyFactory factory) {
        }

        @Override
        public HessianConnection open(URL url) {
            return new AbstractHessianConnection() {
                private final ByteArrayOutputStream out = new ByteArrayOutputStream();

                @Override
                public OutputStream getOutputStream() {
                    return out;
                }

                @Override
                public void sendRequest() throws IOException {
                    request = out.toByteArray();
                    ByteArrayOutputStream answer = new ByteArrayOutputStream();
                    try {
                        skeleton.invoke(new ByteArrayInputStream(request), answer);
                    } catch (Exception e) {
                        throw new IOException(e);
                    }
                    reply = answer.toByteArray();
                }

                @Override
                public int getStatusCode() {
                    return 200;
                }

                @Override
                public String getStatusMessage() {
                    return "OK";
                }

                @Override
                public InputStream getInputStream() {
                    return new ByteArrayInputStream(reply);
                }

                @Override
                public void destroy() {
                }
            };
        }

        void save(GoldenVectors g, String name) throws Exception {
            g.add(name + "/request", request);
            g.add(name + "/reply", reply);
            request = null;
            reply = null;
        }
    }
}


/** An unchecked exception carrying a stable code, like the billing domain errors. */
class GoldenException extends RuntimeException {
    private final String code;

    GoldenException(String code, String message) {
        super(message, null, false, false);
        this.code = code;
    }

    String getCode() {
        return code;
    }
}



class GoldenServiceImpl implements GoldenVectors.GoldenService {
    @Override
    public int add(int a, int b) {
        return a + b;
    }

    @Override
    public void ping() {
    }

    @Override
    public String echo(String s) {
        return s;
    }

    @Override
    public long total(List<Long> amounts) {
        long sum = 0;
        for (Long a : amounts) {
            sum += a;
        }
        return sum;
    }

    @Override
    public Date when(Date d) {
        return d;
    }

    @Override
    public Pojo echoPojo(Pojo p) {
        return p;
    }

    @Override
    public List<Pojo> pojos(int n) {
        List<Pojo> result = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Pojo p = GoldenVectors.pojo();
            p.count = i;
            result.add(p);
        }
        return result;
    }

    @Override
    public byte[] blob(int n) {
        return GoldenVectors.blob(n);
    }

    @Override
    public String text(int n) {
        return GoldenVectors.text(n);
    }

    @Override
    public List<Object> textThenBlob(int chars, int bytes) {
        return GoldenVectors.list(GoldenVectors.text(chars), GoldenVectors.blob(bytes));
    }

    @Override
    public List<Object> mixedThenBlob(int chars, int bytes) {
        return GoldenVectors.list(GoldenVectors.mixedText(chars), GoldenVectors.blob(bytes));
    }

    @Override
    public String store(String s, int i, long l, double d, Date t, Object nothing, List<Object> list, Pojo p) {
        return s + i + l + d + t.getTime() + nothing + list.size() + p.name;
    }

    @Override
    public String fail(String message) {
        IllegalStateException e = new IllegalStateException(message);
        // A fixed stack keeps the vector independent of the JVM's frames.
        e.setStackTrace(new StackTraceElement[] {
            new StackTraceElement("golden.GoldenServiceImpl", "fail", "GoldenVectors.java", 42)});
        throw e;
    }

    @Override
    public String failCoded(String code) {
        throw new GoldenException(code, "limit exceeded");
    }
}

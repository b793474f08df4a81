package io.cdcflow.recorder;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

import io.apicurio.registry.utils.converter.avro.AvroData;
import io.apicurio.registry.utils.converter.avro.AvroDataConfig;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;

/**
 * Records what Debezium's connectors publish, for cdcflow's golden files: it
 * runs a connector in Debezium's embedded engine against a real database,
 * applies a workload (a snapshot of the rows a setup script wrote, then
 * the workload's statements, one transaction per line), and writes every
 * record it received as one JSON line with the key and value in the three
 * forms a Kafka Connect worker would have written them: JsonConverter with
 * schemas.enable=true and false, and Avro as Confluent's AvroConverter forms
 * it (Apicurio's AvroData, a port of Confluent's, turns the Connect schema
 * and value into an Avro schema and datum; the Go tests register the schema
 * and frame the body in the wire format themselves).
 *
 * Usage: Recorder postgres|mariadb|mongodb OUT.jsonl
 */
public final class Recorder {

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: Recorder postgres|mariadb|mongodb OUT.jsonl");
            System.exit(2);
        }
        Path out = Path.of(args[1]);
        List<SourceRecord> records = switch (args[0]) {
            case "postgres" -> record(postgres(), Workloads.POSTGRES_URL, "cdcflow", "cdcflow", Workloads.POSTGRES_SETUP, Workloads.POSTGRES_WORKLOAD);
            case "mariadb" -> record(mariadb(), Workloads.MARIADB_URL, "debezium", "dbz", Workloads.MARIADB_SETUP, Workloads.MARIADB_WORKLOAD);
            case "mongodb" -> io.debezium.connector.mongodb.MongoRecords.records();
            default -> throw new IllegalArgumentException("unknown source " + args[0]);
        };
        write(records, out);
        System.err.printf("recorder: %d records written to %s%n", records.size(), out);
    }

    static Properties common(String name) {
        Properties p = new Properties();
        p.setProperty("name", name);
        p.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        p.setProperty("offset.flush.interval.ms", "1000");
        p.setProperty("schema.history.internal", "io.debezium.relational.history.MemorySchemaHistory");
        return p;
    }

    static Properties postgres() {
        Properties p = common("pg-recorder");
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("database.hostname", "127.0.0.1");
        p.setProperty("database.port", System.getProperty("pg.port", "55432"));
        p.setProperty("database.user", "cdcflow");
        p.setProperty("database.password", "cdcflow");
        p.setProperty("database.dbname", "cdcflow");
        p.setProperty("topic.prefix", "pgdbz");
        p.setProperty("schema.include.list", "dbzrec");
        p.setProperty("slot.name", "dbz_recorder");
        p.setProperty("slot.drop.on.stop", "true");
        p.setProperty("publication.name", "dbz_recorder");
        p.setProperty("publication.autocreate.mode", "filtered");
        p.setProperty("snapshot.mode", "initial");
        return p;
    }

    static Properties mariadb() {
        Properties p = common("mariadb-recorder");
        p.setProperty("connector.class", "io.debezium.connector.mariadb.MariaDbConnector");
        p.setProperty("database.hostname", "127.0.0.1");
        p.setProperty("database.port", System.getProperty("mariadb.port", "13306"));
        p.setProperty("database.user", "debezium");
        p.setProperty("database.password", "dbz");
        p.setProperty("database.server.id", "5400");
        p.setProperty("topic.prefix", "mydbz");
        p.setProperty("database.include.list", "inventory");
        p.setProperty("snapshot.mode", "initial");
        p.setProperty("provide.transaction.metadata", "true");
        p.setProperty("include.schema.changes", "false");
        return p;
    }

    /**
     * Runs setup, starts the connector, waits for its snapshot, runs the
     * workload and waits until no record arrived for a while.
     */
    static List<SourceRecord> record(Properties props, String url, String user, String password,
                                     List<String> setup, List<String> workload)
            throws Exception {
        exec(url, user, password, setup);
        List<SourceRecord> records = new ArrayList<>();
        DebeziumEngine<RecordChangeEvent<SourceRecord>> engine = DebeziumEngine
                .create(ChangeEventFormat.of(io.debezium.embedded.Connect.class))
                .using(props)
                .notifying(r -> {
                    synchronized (records) {
                        records.add(r.record());
                    }
                })
                .build();
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.execute(engine);
        waitQuiet(records, 1, 8000);
        Thread.sleep(3000); // streaming has started once the snapshot is in
        exec(url, user, password, workload);
        waitQuiet(records, records.size() + 1, 8000);
        engine.close();
        executor.shutdown();
        executor.awaitTermination(60, TimeUnit.SECONDS);
        synchronized (records) {
            // Heartbeats and schema changes are not change events.
            return new ArrayList<>(records.stream().filter(r -> r.topic().startsWith(props.getProperty("topic.prefix") + ".")).toList());
        }
    }

    static void waitQuiet(List<SourceRecord> records, int atLeast, long quietMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 180_000;
        int last = -1;
        long since = System.currentTimeMillis();
        while (System.currentTimeMillis() < deadline) {
            int n;
            synchronized (records) {
                n = records.size();
            }
            if (n != last) {
                last = n;
                since = System.currentTimeMillis();
            }
            else if (n >= atLeast && System.currentTimeMillis() - since > quietMs) {
                return;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("no records settled in time: " + last);
    }

    /** Runs each line as one transaction (statements separated by ";;"). */
    static void exec(String url, String user, String password, List<String> lines) throws Exception {
        try (Connection c = DriverManager.getConnection(url, user, password)) {
            c.setAutoCommit(false);
            for (String line : lines) {
                try (Statement s = c.createStatement()) {
                    for (String stmt : line.split(";;")) {
                        if (!stmt.isBlank()) {
                            s.execute(stmt);
                        }
                    }
                }
                c.commit();
                Thread.sleep(50);
            }
        }
    }

    static void write(List<SourceRecord> records, Path out) throws IOException {
        JsonConverter jsonKey = json(true, true), jsonValue = json(false, true);
        JsonConverter plainKey = json(true, false), plainValue = json(false, false);
        AvroData avro = new AvroData(new AvroDataConfig.Builder().with("schemas.cache.config", 100).build());
        Files.createDirectories(out.toAbsolutePath().getParent());
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out, StandardCharsets.UTF_8))) {
            for (SourceRecord r : records) {
                StringBuilder b = new StringBuilder();
                b.append("{\"topic\":").append(quote(r.topic()));
                b.append(",\"key\":").append(forms(r.topic(), r.keySchema(), r.key(), jsonKey, plainKey, avro));
                b.append(",\"value\":").append(forms(r.topic(), r.valueSchema(), r.value(), jsonValue, plainValue, avro));
                b.append("}");
                w.println(b);
            }
        }
    }

    static JsonConverter json(boolean isKey, boolean schemas) {
        JsonConverter c = new JsonConverter();
        c.configure(Map.of("schemas.enable", Boolean.toString(schemas)), isKey);
        return c;
    }

    static String forms(String topic, Schema schema, Object value, JsonConverter withSchema, JsonConverter plain, AvroData avro)
            throws IOException {
        if (value == null) {
            return "null"; // a tombstone
        }
        StringBuilder b = new StringBuilder("{");
        b.append("\"json\":").append(new String(withSchema.fromConnectData(topic, schema, value), StandardCharsets.UTF_8));
        b.append(",\"json_schemaless\":").append(new String(plain.fromConnectData(topic, schema, value), StandardCharsets.UTF_8));
        org.apache.avro.Schema avroSchema = avro.fromConnectSchema(schema);
        Object datum = avro.fromConnectData(schema, value);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        BinaryEncoder enc = EncoderFactory.get().binaryEncoder(bytes, null);
        new GenericDatumWriter<>(avroSchema).write(unwrap(datum), enc);
        enc.flush();
        b.append(",\"avro_schema\":").append(quote(avroSchema.toString()));
        b.append(",\"avro\":").append(quote(Base64.getEncoder().encodeToString(bytes.toByteArray())));
        return b.append("}").toString();
    }

    /** AvroData wraps non-record values with their schema; the writer wants the value. */
    static Object unwrap(Object datum) {
        if (datum instanceof io.apicurio.registry.serde.avro.NonRecordContainer c) {
            return c.getValue();
        }
        return datum;
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (ch < 0x20) {
                        b.append(String.format("\\u%04x", (int) ch));
                    }
                    else {
                        b.append(ch);
                    }
                }
            }
        }
        return b.append('"').toString();
    }
}

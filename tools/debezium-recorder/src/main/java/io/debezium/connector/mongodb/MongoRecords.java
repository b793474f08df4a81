package io.debezium.connector.mongodb;

import java.math.BigDecimal;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.source.SourceRecord;
import org.bson.BsonDateTime;
import org.bson.BsonDecimal128;
import org.bson.BsonDocument;
import org.bson.BsonInt32;
import org.bson.BsonInt64;
import org.bson.BsonNull;
import org.bson.BsonString;
import org.bson.BsonTimestamp;
import org.bson.types.Decimal128;

import com.mongodb.client.model.changestream.ChangeStreamDocument;
import com.mongodb.client.model.changestream.UpdateDescription;

import io.debezium.config.Configuration;
import io.debezium.data.Envelope;
import io.debezium.data.Json;
import io.debezium.pipeline.txmetadata.TransactionMonitor;

/**
 * MongoDB change events made without a MongoDB server (none runs on the
 * machines cdcflow is developed on): the change stream events are written by
 * hand, as a replica set would send them for the workload below, and
 * everything Debezium's MongoDB connector makes of them is made by its own
 * classes (in its package, for the package-private ones): the key and the
 * document JSON (JsonSerialization), before/after/updateDescription
 * (MongoDbCollectionSchema), the source block (SourceInfo and
 * MongoDbSourceInfoStructMaker), with the connector's envelope schema. What
 * is by hand: the cluster times, wall times, session ids, the processing
 * time ts_ms and the transaction block (TransactionMonitor's schema, filled
 * as it fills it with provide.transaction.metadata=true).
 */
public final class MongoRecords {

    static final String PREFIX = "mongodbz";
    static final int T0 = 1795255200; // 2026-11-21T10:00:00Z, the snapshot's cluster time

    public static List<SourceRecord> records() {
        MongoDbConnectorConfig config = new MongoDbConnectorConfig(Configuration.create()
                .with("topic.prefix", PREFIX)
                .with("mongodb.connection.string", "mongodb://127.0.0.1:27017/?replicaSet=rs0")
                .with("provide.transaction.metadata", "true")
                .build());
        MongoDbSourceInfoStructMaker maker = new MongoDbSourceInfoStructMaker();
        maker.init("mongodb", Module.version(), config);
        SourceInfo source = new SourceInfo(config);
        JsonSerialization ser = new JsonSerialization();
        CollectionId id = new CollectionId("inventory", "orders");
        String topic = PREFIX + ".inventory.orders";
        Schema keySchema = SchemaBuilder.struct().name(config.schemaNameAdjuster().adjust(topic + ".Key"))
                .field("id", Schema.STRING_SCHEMA).build();
        Schema valueSchema = SchemaBuilder.struct()
                .name(config.schemaNameAdjuster().adjust(Envelope.schemaName(topic)))
                .field(Envelope.FieldName.BEFORE, Json.builder().optional().build())
                .field(Envelope.FieldName.AFTER, Json.builder().optional().build())
                .field(MongoDbFieldName.UPDATE_DESCRIPTION, MongoDbSchema.UPDATED_DESCRIPTION_SCHEMA)
                .field(Envelope.FieldName.SOURCE, maker.schema())
                .field(Envelope.FieldName.OPERATION, Schema.OPTIONAL_STRING_SCHEMA)
                .field(Envelope.FieldName.TIMESTAMP, Schema.OPTIONAL_INT64_SCHEMA)
                .field(Envelope.FieldName.TRANSACTION, TransactionMonitor.TRANSACTION_BLOCK_SCHEMA)
                .build();
        MongoDbCollectionSchema schema = new MongoDbCollectionSchema(id, FieldSelector.builder().build().fieldFilterFor(id),
                keySchema, ser::getDocumentId, Envelope.fromSchema(valueSchema), valueSchema, ser::getDocumentValue);

        List<SourceRecord> out = new ArrayList<>();
        // The snapshot: two documents, read at the cluster time the snapshot started.
        source.startInitialSnapshot();
        source.setPosition(new SourceInfo.Position(new BsonTimestamp(T0, 3), null, null));
        for (BsonDocument doc : List.of(order(1, 1, "new", "10.50", "2026-11-21T10:00:00Z", null),
                order(2, 2, "new", "99.99", "2026-11-21T11:30:00Z", "gift"))) {
            source.readEvent(id, 0L);
            Struct value = schema.valueFromDocumentSnapshot(doc, Envelope.Operation.READ);
            value.put(Envelope.FieldName.SOURCE, maker.struct(source));
            value.put(Envelope.FieldName.OPERATION, Envelope.Operation.READ.code());
            value.put(Envelope.FieldName.TIMESTAMP, (T0 + 1) * 1000L);
            out.add(record(topic, schema, doc, value));
        }
        source.stopInitialSnapshot();

        // The stream: an insert, an update (with the full document the
        // connector looks up, capture.mode=change_streams_update_full), a
        // transaction that inserts and updates one document, a replacement,
        // a delete, and an update whose lookup found no document (deleted
        // right after: its delete follows at a later ord of the same second).
        BsonDocument o3 = order(3, 1, "new", "5.00", "2026-11-22T09:15:00Z", null);
        stream(out, source, maker, schema, topic, "insert", o3, null, null, ts(60, 1), 1795310100_000L, null);
        BsonDocument o1 = order(1, 1, "paid", "10.50", "2026-11-21T10:00:00Z", null);
        stream(out, source, maker, schema, topic, "update", o1, key(1), new UpdateDescription(null, new BsonDocument("status", new BsonString("paid"))),
                ts(120, 1), 1795310160_000L, null);
        BsonDocument lsid = new BsonDocument("id", new org.bson.BsonBinary(java.util.UUID.fromString("0b1e1c9c-2f6e-4a4e-9d1a-5b0c2d3e4f50")));
        BsonDocument o4 = order(4, 2, "new", "20.00", "2026-11-22T12:00:00Z", null);
        BsonDocument o4b = order(4, 2, "new", "25.00", "2026-11-22T12:00:00Z", null);
        stream(out, source, maker, schema, topic, "insert", o4, null, null, ts(180, 1), 1795310220_000L, new Txn(lsid, 1, 1));
        stream(out, source, maker, schema, topic, "update", o4b, key(4),
                new UpdateDescription(null, new BsonDocument("amount", new BsonDecimal128(Decimal128.parse("25.00")))),
                ts(180, 1), 1795310220_000L, new Txn(lsid, 1, 2));
        BsonDocument o2 = order(2, 2, "paid", "89.99", "2026-11-21T11:30:00Z", "gift");
        stream(out, source, maker, schema, topic, "replace", o2, key(2), null, ts(240, 1), 1795310280_000L, null);
        stream(out, source, maker, schema, topic, "delete", null, key(3), null, ts(240, 2), 1795310280_001L, null);
        BsonDocument o5 = order(5, 1, "new", "1.00", "2026-11-23T08:00:00Z", null);
        stream(out, source, maker, schema, topic, "insert", o5, null, null, ts(300, 1), 1795310340_000L, null);
        stream(out, source, maker, schema, topic, "update", null, key(5), new UpdateDescription(null, new BsonDocument("status", new BsonString("paid"))),
                ts(301, 1), 1795310341_000L, null);
        stream(out, source, maker, schema, topic, "delete", null, key(5), null, ts(301, 2), 1795310341_002L, null);
        BsonDocument o1s = order(1, 1, "shipped", "10.50", "2026-11-21T10:00:00Z", null);
        stream(out, source, maker, schema, topic, "update", o1s, key(1), new UpdateDescription(List.of("note"), new BsonDocument("status", new BsonString("shipped"))),
                ts(360, 1), 1795310400_000L, null);
        return out;
    }

    record Txn(BsonDocument lsid, long number, long order) {
    }

    static BsonTimestamp ts(int secondsAfterSnapshot, int inc) {
        return new BsonTimestamp(T0 + secondsAfterSnapshot, inc);
    }

    static BsonDocument key(int id) {
        return new BsonDocument("_id", new BsonInt32(id));
    }

    static BsonDocument order(int id, int customer, String status, String amount, String createdAt, String note) {
        BsonDocument d = new BsonDocument("_id", new BsonInt32(id))
                .append("customer_id", new BsonInt64(customer))
                .append("status", new BsonString(status))
                .append("amount", new BsonDecimal128(new Decimal128(new BigDecimal(amount))))
                .append("created_at", new BsonDateTime(Instant.parse(createdAt).toEpochMilli()));
        d.append("note", note == null ? BsonNull.VALUE : new BsonString(note));
        return d;
    }

    static void stream(List<SourceRecord> out, SourceInfo source, MongoDbSourceInfoStructMaker maker, MongoDbCollectionSchema schema,
                       String topic, String opType, BsonDocument full, BsonDocument documentKey, UpdateDescription update,
                       BsonTimestamp clusterTime, long wallTime, Txn txn) {
        BsonDocument dk = documentKey != null ? documentKey : new BsonDocument("_id", full.get("_id"));
        BsonDocument resume = new BsonDocument("_data", new BsonString(String.format("82%08X%08X2B042C0100296E5A1004", clusterTime.getTime(), clusterTime.getInc())));
        ChangeStreamDocument<BsonDocument> ev = new ChangeStreamDocument<>(opType, resume,
                new BsonDocument("db", new BsonString("inventory")).append("coll", new BsonString("orders")), "collection", null,
                full, null, dk, clusterTime, update, txn == null ? null : new BsonInt64(txn.number()), txn == null ? null : txn.lsid(),
                new BsonDateTime(wallTime), null, null);
        source.changeStreamEvent(ev);
        Envelope.Operation op = switch (opType) {
            case "insert" -> Envelope.Operation.CREATE;
            case "update", "replace" -> Envelope.Operation.UPDATE;
            default -> Envelope.Operation.DELETE;
        };
        Struct value = schema.valueFromDocumentChangeStream(ev, op);
        value.put(Envelope.FieldName.SOURCE, maker.struct(source));
        value.put(Envelope.FieldName.OPERATION, op.code());
        value.put(Envelope.FieldName.TIMESTAMP, wallTime + 350);
        if (txn != null) {
            Struct block = new Struct(TransactionMonitor.TRANSACTION_BLOCK_SCHEMA);
            Struct src = value.getStruct(Envelope.FieldName.SOURCE);
            block.put("id", src.getString(SourceInfo.LSID) + ":" + src.getInt64(SourceInfo.TXN_NUMBER));
            block.put("total_order", txn.order());
            block.put("data_collection_order", txn.order());
            value.put(Envelope.FieldName.TRANSACTION, block);
        }
        out.add(record(topic, schema, dk, value));
        if (op == Envelope.Operation.DELETE) {
            out.add(new SourceRecord(null, null, topic, null, schema.keySchema(), schema.keyFromDocument(dk), null, null));
        }
    }

    static SourceRecord record(String topic, MongoDbCollectionSchema schema, BsonDocument doc, Struct value) {
        return new SourceRecord(null, null, topic, null, schema.keySchema(), schema.keyFromDocument(doc), schema.valueSchema(), value);
    }

    private MongoRecords() {
    }
}

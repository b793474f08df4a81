package io.cdcflow.recorder;

import java.util.List;

/**
 * What each recording does to its database. Each line of a workload is one
 * transaction; ";;" separates its statements. The Go tests in
 * topologies/debezium_test.go state what the records of these workloads say.
 */
final class Workloads {

    static final String POSTGRES_URL = "jdbc:postgresql://127.0.0.1:" + System.getProperty("pg.port", "55432") + "/cdcflow";

    static final List<String> POSTGRES_SETUP = List.of(
            "DROP SCHEMA IF EXISTS dbzrec CASCADE;;"
                    + "CREATE SCHEMA dbzrec;;"
                    + "CREATE TABLE dbzrec.customers (id int PRIMARY KEY, name text NOT NULL, segment text);;"
                    + "CREATE TABLE dbzrec.orders (id int PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,"
                    + " amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL, note text);;"
                    + "INSERT INTO dbzrec.customers VALUES (1, 'Ada', 'retail'), (2, 'Grace', 'wholesale');;"
                    + "INSERT INTO dbzrec.orders VALUES (1, 1, 'new', 10.50, '2026-11-21 10:00:00+00', NULL),"
                    + " (2, 2, 'new', 99.99, '2026-11-21 11:30:00+00', 'gift')");

    static final List<String> POSTGRES_WORKLOAD = List.of(
            "INSERT INTO dbzrec.orders VALUES (3, 1, 'new', 5.00, '2026-11-22 09:15:00+00', NULL)",
            "UPDATE dbzrec.orders SET status = 'paid' WHERE id = 1",
            // One transaction: an order inserted and updated, a customer renamed.
            "INSERT INTO dbzrec.orders VALUES (4, 2, 'new', 20.00, '2026-11-22 12:00:00+00', NULL);;"
                    + "UPDATE dbzrec.orders SET amount = 25.00 WHERE id = 4;;"
                    + "UPDATE dbzrec.customers SET name = 'Grace H.' WHERE id = 2",
            "UPDATE dbzrec.orders SET amount = 89.99, status = 'paid' WHERE id = 2",
            "DELETE FROM dbzrec.orders WHERE id = 3",
            // Three rows in one statement.
            "INSERT INTO dbzrec.orders VALUES (5, 1, 'new', 1.00, '2026-11-23 08:00:00+00', NULL),"
                    + " (6, 1, 'new', 2.00, '2026-11-23 08:01:00+00', NULL), (7, 2, 'new', 3.00, '2026-11-23 08:02:00+00', NULL)",
            // A primary-key change: Debezium sends a delete of 7 (and its tombstone) and a create of 8.
            "UPDATE dbzrec.orders SET id = 8 WHERE id = 7",
            "UPDATE dbzrec.orders SET status = 'shipped' WHERE id = 1");

    static final String MARIADB_URL = "jdbc:mariadb://127.0.0.1:" + System.getProperty("mariadb.port", "13306")
            + "/";

    static final List<String> MARIADB_SETUP = List.of(
            "DROP DATABASE IF EXISTS inventory;;"
                    + "CREATE DATABASE inventory;;"
                    + "CREATE TABLE inventory.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, segment VARCHAR(16));;"
                    + "CREATE TABLE inventory.orders (id INT PRIMARY KEY, customer_id INT NOT NULL,"
                    + " status ENUM('new','paid','shipped') NOT NULL, amount DECIMAL(10,2) NOT NULL,"
                    + " created_at DATETIME(3) NOT NULL, note VARCHAR(100), express TINYINT(1) NOT NULL DEFAULT 0);;"
                    + "INSERT INTO inventory.customers VALUES (1, 'Ada', 'retail'), (2, 'Grace', 'wholesale');;"
                    + "INSERT INTO inventory.orders VALUES (1, 1, 'new', 10.50, '2026-11-21 10:00:00', NULL, 0),"
                    + " (2, 2, 'new', 99.99, '2026-11-21 11:30:00', 'gift', 1)");

    static final List<String> MARIADB_WORKLOAD = List.of(
            "INSERT INTO inventory.orders VALUES (3, 1, 'new', 5.00, '2026-11-22 09:15:00', NULL, 0)",
            "UPDATE inventory.orders SET status = 'paid' WHERE id = 1",
            "INSERT INTO inventory.orders VALUES (4, 2, 'new', 20.00, '2026-11-22 12:00:00', NULL, 0);;"
                    + "UPDATE inventory.orders SET amount = 25.00 WHERE id = 4;;"
                    + "UPDATE inventory.customers SET name = 'Grace H.' WHERE id = 2",
            // The binlog rotates: the changes after it are in the next file, at smaller positions.
            "FLUSH BINARY LOGS",
            "UPDATE inventory.orders SET amount = 89.99, status = 'paid' WHERE id = 2",
            "DELETE FROM inventory.orders WHERE id = 3",
            "INSERT INTO inventory.orders VALUES (5, 1, 'new', 1.00, '2026-11-23 08:00:00', NULL, 0),"
                    + " (6, 1, 'new', 2.00, '2026-11-23 08:01:00', NULL, 0), (7, 2, 'new', 3.00, '2026-11-23 08:02:00', NULL, 1)",
            "UPDATE inventory.orders SET status = 'shipped' WHERE id IN (1, 5)");

    private Workloads() {
    }
}

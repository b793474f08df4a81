package orders

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// SummariesFromSQL computes the order summaries of the tables of schema with
// SQL, as the read model [Summaries] keeps them: the answer to check the
// read model (and its search index) against, by order id.
func SummariesFromSQL(ctx context.Context, db *pgx.Conn, schema string) (map[string]OrderSummary, error) {
	rows, err := db.Query(ctx, fmt.Sprintf(`SELECT o.id, o.customer_id, coalesce(c.name, ''), coalesce(c.segment, ''), o.status,
		o.amount::text, o.created_at, count(i.id), coalesce(sum(i.quantity * i.unit_price), 0)::numeric(14, 2)::text
		FROM %[1]s.orders o LEFT JOIN %[1]s.customers c ON c.id = o.customer_id LEFT JOIN %[1]s.order_items i ON i.order_id = o.id
		GROUP BY o.id, c.name, c.segment`, pgx.Identifier{schema}.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("order summaries of %s: %w", schema, err)
	}
	defer rows.Close()
	out := map[string]OrderSummary{}
	for rows.Next() {
		var s OrderSummary
		var items int64
		if err := rows.Scan(&s.OrderID, &s.CustomerID, &s.CustomerName, &s.CustomerSegment, &s.Status, &s.Amount, &s.CreatedAt, &items, &s.ItemsTotal); err != nil {
			return nil, fmt.Errorf("order summaries of %s: %w", schema, err)
		}
		s.Items, s.CreatedAt = int(items), s.CreatedAt.UTC()
		out[strconv.FormatInt(s.OrderID, 10)] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("order summaries of %s: %w", schema, err)
	}
	return out, nil
}

package dashboard

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

func TestBuildChart(t *testing.T) {
	tests := []struct {
		name   string
		family string
		ranked bool
		series []periodData
		want   Chart
	}{
		{
			name:   "days in date order",
			family: "orders_per_day",
			series: []periodData{{Buckets: map[string]int64{"2026-11-22": 3, "2026-01-05": 1, "2026-11-21": 2}}},
			want: Chart{ID: "shop/orders_per_day", Topology: "shop", Series: "orders_per_day", Title: "Orders per day",
				Kind: "buckets", Axis: "time", Total: 6, Buckets: 3,
				Points: []Point{{"2026-01-05", 1}, {"2026-11-21", 2}, {"2026-11-22", 3}}},
		},
		{
			name:   "cents are money and leave the title",
			family: "revenue_cents_per_day",
			series: []periodData{{Buckets: map[string]int64{"2026-11-21": 4250}}},
			want: Chart{ID: "shop/revenue_cents_per_day", Topology: "shop", Series: "revenue_cents_per_day", Title: "Revenue per day",
				Kind: "buckets", Axis: "time", Money: true, Total: 4250, Buckets: 1, Points: []Point{{"2026-11-21", 4250}}},
		},
		{
			name:   "hours of minutes merge in time order",
			family: "revenue_cents_per_minute",
			series: []periodData{
				{Period: "2026-11-21T22", Buckets: map[string]int64{"00": 5, "10": 7}},
				{Period: "2026-11-21T21", Buckets: map[string]int64{"59": 2, "09": 1}},
			},
			want: Chart{ID: "shop/revenue_cents_per_minute", Topology: "shop", Series: "revenue_cents_per_minute", Title: "Revenue per minute",
				Kind: "buckets", Axis: "time", Money: true, Total: 15, Buckets: 4,
				Points: []Point{{"2026-11-21T21:09", 1}, {"2026-11-21T21:59", 2}, {"2026-11-21T22:00", 5}, {"2026-11-21T22:10", 7}}},
		},
		{
			name:   "numbers in numeric order",
			family: "orders_by_items",
			series: []periodData{{Buckets: map[string]int64{"10": 1, "9": 2, "100": 3, "1.5": 4}}},
			want: Chart{ID: "shop/orders_by_items", Topology: "shop", Series: "orders_by_items", Title: "Orders by items",
				Kind: "buckets", Axis: "number", Total: 10, Buckets: 4,
				Points: []Point{{"1.5", 4}, {"9", 2}, {"10", 1}, {"100", 3}}},
		},
		{
			name:   "categories alphabetically",
			family: "shipments-per-status",
			series: []periodData{{Buckets: map[string]int64{"shipped": 1, "new": 4, "paid": -1}}},
			want: Chart{ID: "shop/shipments-per-status", Topology: "shop", Series: "shipments-per-status", Title: "Shipments per status",
				Kind: "buckets", Axis: "category", Total: 4, Buckets: 3,
				Points: []Point{{"new", 4}, {"paid", -1}, {"shipped", 1}}},
		},
		{
			name:   "a ranking highest first, ties by member",
			family: "top_customers",
			ranked: true,
			series: []periodData{{Ranking: []Point{{"7", 500}, {"3", 900}, {"1", 500}}, Members: 12}},
			want: Chart{ID: "shop/top_customers", Topology: "shop", Series: "top_customers", Title: "Top customers",
				Kind: "ranking", Axis: "category", Total: 1900, Buckets: 12,
				Points: []Point{{"3", 900}, {"1", 500}, {"7", 500}}},
		},
		{
			name:   "no buckets: removed",
			family: "gone",
			series: nil,
			want: Chart{ID: "shop/gone", Topology: "shop", Series: "gone", Title: "Gone", Kind: "buckets", Axis: "category",
				Points: []Point{}, Removed: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildChart("shop", tt.family, tt.ranked, tt.series)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("buildChart:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestChartBounds(t *testing.T) {
	t.Run("a time axis keeps the latest buckets", func(t *testing.T) {
		buckets := map[string]int64{}
		for i := range maxPoints + 10 {
			buckets[fmt.Sprintf("2026-01-01T%02d:%02d", i/60, i%60)] = int64(i + 1)
		}
		c := buildChart("t", "per_minute", false, []periodData{{Buckets: buckets}})
		if len(c.Points) != maxPoints || c.Buckets != maxPoints+10 {
			t.Fatalf("%d points of %d buckets, want %d of %d", len(c.Points), c.Buckets, maxPoints, maxPoints+10)
		}
		if first := c.Points[0]; first.Value != 11 {
			t.Errorf("first point %v, want the 11th bucket", first)
		}
		var total int64
		for i := range maxPoints + 10 {
			total += int64(i + 1)
		}
		if c.Total != total {
			t.Errorf("total %d, want %d (every bucket)", c.Total, total)
		}
	})
	t.Run("a category axis keeps the largest", func(t *testing.T) {
		buckets := map[string]int64{}
		for i := range maxPoints + 1 {
			buckets[fmt.Sprintf("c%04d", i)] = int64(maxPoints + 1 - i) // c0000 largest
		}
		c := buildChart("t", "per_category", false, []periodData{{Buckets: buckets}})
		if len(c.Points) != maxPoints || c.Points[len(c.Points)-1].Label != fmt.Sprintf("c%04d", maxPoints-1) {
			t.Errorf("%d points, last %v: want the %d largest, alphabetically", len(c.Points), c.Points[len(c.Points)-1], maxPoints)
		}
	})
	t.Run("a ranking keeps the top", func(t *testing.T) {
		var top []Point
		for i := range maxRanked + 5 {
			top = append(top, Point{fmt.Sprint(i), int64(i)})
		}
		c := buildChart("t", "ranked", true, []periodData{{Ranking: top, Members: 1000}})
		if len(c.Points) != maxRanked || c.Points[0].Value != maxRanked+4 || c.Buckets != 1000 {
			t.Errorf("%d points from %v, %d members", len(c.Points), c.Points[0], c.Buckets)
		}
	})
}

func TestAxisOf(t *testing.T) {
	tests := []struct {
		labels []string
		want   string
	}{
		{[]string{"2026-11-21", "2026-11"}, axisTime},
		{[]string{"2026-11-21T21", "2026-11-21 21:04", "2026-11-21T21:04:05"}, axisTime},
		{[]string{"21:04", "09:00"}, axisTime},
		{[]string{"04", "10", "-3", "2.5"}, axisNumber},
		{[]string{"2026-11-21", "new"}, axisCategory},
		{[]string{"2026-13"}, axisTime}, // looks like a month; sorts as text either way
		{[]string{"paid"}, axisCategory},
		{nil, axisCategory},
	}
	for _, tt := range tests {
		var points []Point
		for _, l := range tt.labels {
			points = append(points, Point{Label: l})
		}
		if got := axisOf(points); got != tt.want {
			t.Errorf("axisOf(%q) = %s, want %s", tt.labels, got, tt.want)
		}
	}
}

func TestTitleOf(t *testing.T) {
	tests := []struct {
		series, title string
		money         bool
	}{
		{"orders_per_day", "Orders per day", false},
		{"revenue_cents_per_minute", "Revenue per minute", true},
		{"top_customers_by_revenue", "Top customers by revenue", false},
		{"top_customers_by_revenue_cents", "Top customers by revenue", true},
		{"Cents", "Cents", true},
		{"bytes.in", "Bytes in", false},
	}
	for _, tt := range tests {
		title, money := titleOf(tt.series)
		if title != tt.title || money != tt.money {
			t.Errorf("titleOf(%q) = %q, %v; want %q, %v", tt.series, title, money, tt.title, tt.money)
		}
	}
}

func TestPointJSON(t *testing.T) {
	b, err := json.Marshal([]Point{{"2026-11-21", 42}})
	if err != nil || string(b) != `[["2026-11-21",42]]` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var back []Point
	if err := json.Unmarshal(b, &back); err != nil || back[0] != (Point{"2026-11-21", 42}) {
		t.Fatalf("unmarshal: %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`[["x"]]`), &back); err == nil {
		t.Error("unmarshal of [label] without a value: no error")
	}
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"
)

// promSnapshot holds the cumulative _sum and _count series of Vault's
// telemetry in Prometheus format (timings in milliseconds).
type promSnapshot map[string]float64

// promDelta is what the series grew by between two snapshots.
type promDelta map[string]float64

// scrape reads sys/metrics?format=prometheus; a dev server keeps it.
func scrape(ctx context.Context, c *api.Client) (promSnapshot, error) {
	r := c.NewRequest("GET", "/v1/sys/metrics")
	r.Params.Set("format", "prometheus")
	resp, err := c.RawRequestWithContext(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("sys/metrics: %w", err)
	}
	defer resp.Body.Close()

	out := promSnapshot{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if !strings.HasSuffix(name, "_sum") && !strings.HasSuffix(name, "_count") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

func (s promSnapshot) since(before promSnapshot) promDelta {
	d := promDelta{}
	for k, v := range s {
		d[k] = v - before[k]
	}
	return d
}

// mean is the average of a timing (in milliseconds) over the delta, and
// how many samples it had.
func (d promDelta) mean(metric string) (float64, int) {
	n := d[metric+"_count"]
	if n <= 0 {
		return 0, 0
	}
	return d[metric+"_sum"] / n, int(n)
}

// Vault's timings the report uses.
const (
	metricRouteCreds = "vault_route_read_unitycrm_"
	metricRouteKV    = "vault_route_read_kv_"
	metricRegister   = "vault_expire_register"
)

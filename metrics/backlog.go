package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fanouthq/fanout"
)

// BacklogSource reports the undelivered work per target. fanout.Store
// implements it.
type BacklogSource interface {
	Backlog(ctx context.Context) ([]fanout.TargetBacklog, error)
}

var _ BacklogSource = fanout.Store(nil)

// Defaults of BacklogOptions.
const (
	DefaultBacklogTimeout  = 2 * time.Second
	DefaultBacklogCacheFor = time.Second
)

// BacklogOptions configure a BacklogCollector. Zero fields take the
// documented defaults.
type BacklogOptions struct {
	// Timeout bounds one read of the backlog during a scrape. Default 2s.
	Timeout time.Duration
	// CacheFor is how long one read serves later scrapes, so that several
	// scrapers (or a tight scrape interval) cost the store one query.
	// Default 1s.
	CacheFor time.Duration
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives one warning per failed read. Nil discards them.
	Logger *slog.Logger
}

// BacklogCollector is a prometheus.Collector that reads the delivery
// backlog from a BacklogSource at scrape time and exposes
// fanout_deliveries{state} (summed over targets),
// fanout_backlog_deliveries{target,state},
// fanout_backlog_oldest_seconds{target} and
// fanout_backlog_scrape_errors_total. States are "waiting" and "dead".
//
// When a read fails or times out, the scrape carries no backlog samples
// (rather than stale ones) and the error counter grows. Create it with
// NewBacklogCollector and register it on the same registry as New.
type BacklogCollector struct {
	src      BacklogSource
	timeout  time.Duration
	cacheFor time.Duration
	now      func() time.Time
	log      *slog.Logger

	deliveries        *prometheus.Desc
	backlogDeliveries *prometheus.Desc
	oldest            *prometheus.Desc
	errors            prometheus.Counter

	mu      sync.Mutex // guards the cache; held during a read
	readAt  time.Time
	backlog []fanout.TargetBacklog
	readErr error
}

var _ prometheus.Collector = (*BacklogCollector)(nil)

// NewBacklogCollector returns a collector of the backlog of src.
func NewBacklogCollector(src BacklogSource, opts BacklogOptions) *BacklogCollector {
	c := &BacklogCollector{
		src:      src,
		timeout:  opts.Timeout,
		cacheFor: opts.CacheFor,
		now:      opts.Now,
		log:      opts.Logger,
		deliveries: prometheus.NewDesc(NameDeliveries, helpDeliveries,
			[]string{labelState}, nil),
		backlogDeliveries: prometheus.NewDesc(NameBacklogDeliveries, helpBacklogDeliveries,
			[]string{labelTarget, labelState}, nil),
		oldest: prometheus.NewDesc(NameBacklogOldest, helpBacklogOldest,
			[]string{labelTarget}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameBacklogScrapeErrors, Help: helpBacklogScrapeErrors,
		}),
	}
	if c.timeout <= 0 {
		c.timeout = DefaultBacklogTimeout
	}
	if c.cacheFor <= 0 {
		c.cacheFor = DefaultBacklogCacheFor
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.deliveries
	ch <- c.backlogDeliveries
	ch <- c.oldest
	ch <- c.errors.Desc()
}

// Collect implements prometheus.Collector.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	backlog, err := c.read()
	ch <- c.errors
	if err != nil {
		return
	}
	now := c.now()
	type agg struct {
		waiting, dead int
		oldest        time.Time
	}
	per := make(map[string]*agg, len(backlog))
	var waiting, dead int
	for _, b := range backlog {
		a := per[b.Target]
		if a == nil {
			a = &agg{}
			per[b.Target] = a
		}
		a.waiting += b.Waiting
		a.dead += b.Dead
		if b.Waiting > 0 && !b.OldestWaiting.IsZero() && (a.oldest.IsZero() || b.OldestWaiting.Before(a.oldest)) {
			a.oldest = b.OldestWaiting
		}
		waiting += b.Waiting
		dead += b.Dead
	}
	ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.GaugeValue, float64(waiting), stateWaiting)
	ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.GaugeValue, float64(dead), stateDead)
	for target, a := range per {
		ch <- prometheus.MustNewConstMetric(c.backlogDeliveries, prometheus.GaugeValue, float64(a.waiting), target, stateWaiting)
		ch <- prometheus.MustNewConstMetric(c.backlogDeliveries, prometheus.GaugeValue, float64(a.dead), target, stateDead)
		age := 0.0
		if !a.oldest.IsZero() {
			age = max(now.Sub(a.oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, target)
	}
}

// read returns the cached backlog, reading it again when the cache is
// older than CacheFor. Concurrent scrapes share one read.
func (c *BacklogCollector) read() ([]fanout.TargetBacklog, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.readAt.IsZero() && now.Sub(c.readAt) < c.cacheFor && !now.Before(c.readAt) {
		return c.backlog, c.readErr
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.backlog, c.readErr = c.src.Backlog(ctx)
	c.readAt = now
	if c.readErr != nil {
		c.errors.Inc()
		c.log.Warn("metrics: read delivery backlog", slog.String("error", c.readErr.Error()))
	}
	return c.backlog, c.readErr
}

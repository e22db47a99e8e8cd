package fetch

import (
	"math"
	"time"
)

// Progress is a snapshot of a download, passed to Request.Progress.
type Progress struct {
	// Done is the number of bytes of the file present so far, including
	// bytes resumed from an earlier attempt. It only grows within an
	// attempt; it drops back when the server makes the download start
	// over.
	Done int64
	// Total is the size of the file, or -1 while unknown.
	Total int64
	// Rate is the transfer rate in bytes per second, smoothed over the
	// last few seconds; 0 until known.
	Rate float64
	// ETA is the estimated time left, 0 if unknown.
	ETA time.Duration
	// Resumed is the number of bytes that were already on disk when the
	// current attempt started.
	Resumed int64
}

const (
	// progressInterval is the least time between two progress reports.
	progressInterval = 200 * time.Millisecond
	// rateWindow is the time constant of the rate's exponential smoothing.
	rateWindow = 3 * time.Second
)

// progressReporter turns byte counts into throttled Progress reports.
type progressReporter struct {
	fn       func(Progress)
	p        Progress
	last     time.Time // time of the last rate sample
	lastDone int64     // Done at the last rate sample
}

// start begins an attempt that has done bytes on disk, resumed of them kept
// from before, out of total (-1 if unknown).
func (r *progressReporter) start(done, resumed, total int64) {
	if r.fn == nil {
		return
	}
	r.p = Progress{Done: done, Total: total, Resumed: resumed, Rate: r.p.Rate}
	r.last, r.lastDone = time.Now(), done
}

// add records n more bytes and reports if the last report is old enough.
func (r *progressReporter) add(n int64) {
	if r.fn == nil {
		return
	}
	r.p.Done += n
	if r.p.Done == r.p.Total {
		return // finish reports the complete transfer
	}
	if now := time.Now(); now.Sub(r.last) >= progressInterval {
		r.sample(now)
		r.fn(r.p)
	}
}

// finish sends the final report of a complete transfer.
func (r *progressReporter) finish() {
	if r.fn == nil {
		return
	}
	r.sample(time.Now())
	if r.p.Total < 0 {
		r.p.Total = r.p.Done
	}
	r.p.ETA = 0
	r.fn(r.p)
}

// sample updates Rate and ETA.
func (r *progressReporter) sample(now time.Time) {
	dt := now.Sub(r.last)
	if dt <= 0 {
		return
	}
	inst := float64(r.p.Done-r.lastDone) / dt.Seconds()
	if r.p.Rate == 0 {
		r.p.Rate = inst
	} else {
		alpha := 1 - math.Exp(-dt.Seconds()/rateWindow.Seconds())
		r.p.Rate += alpha * (inst - r.p.Rate)
	}
	r.last, r.lastDone = now, r.p.Done
	r.p.ETA = 0
	if r.p.Rate > 0 && r.p.Total > r.p.Done {
		r.p.ETA = time.Duration(float64(r.p.Total-r.p.Done) / r.p.Rate * float64(time.Second))
	}
}

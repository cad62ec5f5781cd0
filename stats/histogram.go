package stats

import (
	"math"
	"time"
)

// The latency histogram maps a duration to a bin with logarithmic bounds
// (the DDSketch mapping): bin i > 0 holds (min·γ^(i-1), min·γ^i], and its
// representative value 2·min·γ^i/(γ+1) is within relativeAccuracy of any
// value in it. Bin 0 holds everything up to histMin; the last bin
// everything above histMax.
const (
	// relativeAccuracy bounds the relative error of a bin's
	// representative value; with the rounding to whole nanoseconds it
	// keeps a percentile within 2% of the true sample from 1µs up.
	relativeAccuracy = 0.0195
	histMin          = float64(time.Microsecond)
	histMax          = float64(time.Hour)
)

// gamma is the ratio of a bin's upper bound to its lower bound.
const gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)

// numBins covers histMin to histMax: ceil(ln(histMax/histMin)/ln γ) + 1,
// which is 566 for 1.95%; TestBinRange checks it.
const numBins = 566

// lnGamma is ln γ (math.Log is not a constant expression); TestBinRange
// checks it.
const lnGamma = 0.03900494437810888

// binOf returns the bin of d.
func binOf(d time.Duration) int {
	v := float64(d)
	if v <= histMin {
		return 0
	}
	i := int(math.Ceil(math.Log(v/histMin) / lnGamma))
	if i >= numBins {
		return numBins - 1
	}
	return i
}

// binValue returns the representative duration of bin i.
func binValue(i int) time.Duration {
	if i <= 0 {
		return time.Duration(histMin)
	}
	return time.Duration(histMin * 2 * math.Pow(gamma, float64(i)) / (gamma + 1))
}

// quantile returns the duration at quantile q (0 < q ≤ 1) of the merged
// histogram h holding total samples, by nearest rank: the representative
// value of the bin that holds the ceil(q·total)-th smallest sample.
func quantile(h *[numBins]uint64, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return binValue(i)
		}
	}
	return binValue(numBins - 1)
}

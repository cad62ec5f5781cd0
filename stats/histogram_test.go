package stats

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBinRange(t *testing.T) {
	t.Parallel()
	require.InDelta(t, math.Log(gamma), lnGamma, 1e-15)
	require.Equal(t, numBins-1, int(math.Ceil(math.Log(histMax/histMin)/math.Log(gamma))))
	require.Equal(t, 0, binOf(0))
	require.Equal(t, 0, binOf(-time.Second))
	require.Equal(t, 0, binOf(time.Microsecond))
	require.Equal(t, numBins-1, binOf(time.Hour))
	require.Equal(t, numBins-1, binOf(24*time.Hour), "past the top: the last bin")
	require.Less(t, binOf(59*time.Minute), numBins-1)
}

// TestBinAccuracy checks the stated bound: the representative value of a
// bin is within relativeAccuracy of every duration in it.
func TestBinAccuracy(t *testing.T) {
	t.Parallel()
	worst := 0.0
	for v := 2 * float64(time.Microsecond); v < float64(time.Hour); v *= 1.0007 {
		d := time.Duration(v)
		got := float64(binValue(binOf(d)))
		rel := math.Abs(got-float64(d)) / float64(d)
		worst = max(worst, rel)
	}
	require.LessOrEqual(t, worst, 0.02)
	t.Logf("worst relative error %.4f%%", worst*100)
}

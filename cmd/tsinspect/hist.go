package main

import (
	"container/heap"
	"math"
)

// sizeHist is a log-bucketed histogram of sizes in bytes, the way
// DDSketch buckets: a size x > 0 falls in bucket ceil(log_γ x) with
// γ = (1+α)/(1-α), and a quantile is reported as 2γ^i/(γ+1), within a
// relative error of α of a true size in its bucket. It takes a fixed
// 16 KiB whatever the count.
type sizeHist struct {
	counts   [histBuckets]uint64
	zero     uint64 // empty values
	n        uint64
	sum      uint64
	min, max int
}

// histAlpha is the relative error bound of a reported quantile: 1%.
const histAlpha = 0.01

const histBuckets = 2048 // γ^2048 > 2^40: values up to a terabyte

var (
	histGamma   = (1 + histAlpha) / (1 - histAlpha)
	histLnGamma = math.Log(histGamma)
)

func (h *sizeHist) add(x int) {
	if h.n == 0 || x < h.min {
		h.min = x
	}
	if x > h.max {
		h.max = x
	}
	h.n++
	h.sum += uint64(x)
	if x <= 0 {
		h.zero++
		return
	}
	i := int(math.Ceil(math.Log(float64(x)) / histLnGamma))
	h.counts[min(max(i, 0), histBuckets-1)]++
}

// quantile returns the size at quantile q (0..1), within histAlpha of a
// true size, clamped to the exact min and max.
func (h *sizeHist) quantile(q float64) int {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank >= h.n {
		return h.max // the largest is known exactly
	}
	seen := h.zero
	if seen >= rank {
		return 0
	}
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := int(math.Round(2 * math.Pow(histGamma, float64(i)) / (histGamma + 1)))
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}

// topK keeps the k largest values seen: a min-heap of k entries.
type topK struct {
	k int
	h sizedHeap
}

type sized struct {
	Key  string `json:"key"`
	Size int    `json:"size"`
}

type sizedHeap []sized

func (h sizedHeap) Len() int { return len(h) }
func (h sizedHeap) Less(i, j int) bool {
	if h[i].Size != h[j].Size {
		return h[i].Size < h[j].Size
	}
	return h[i].Key > h[j].Key
}
func (h sizedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *sizedHeap) Push(x any)   { *h = append(*h, x.(sized)) }
func (h *sizedHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (t *topK) add(key string, size int) {
	if t.k <= 0 {
		return
	}
	s := sized{key, size}
	if t.h.Len() < t.k {
		heap.Push(&t.h, s)
		return
	}
	if (sizedHeap{t.h[0], s}).Less(0, 1) {
		t.h[0] = s
		heap.Fix(&t.h, 0)
	}
}

// sorted returns the entries, largest first.
func (t *topK) sorted() []sized {
	h := append(sizedHeap(nil), t.h...)
	out := make([]sized, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&h).(sized)
	}
	return out
}

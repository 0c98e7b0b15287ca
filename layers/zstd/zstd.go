// Package zstd is a compression layer for session values on
// github.com/klauspost/compress/zstd: a codec.Compressor named "zstd" for
// session.Config.Compressor.
//
// The session manager compresses a payload longer than
// session.Config.CompressAbove bytes (1,024 by default) and records "zstd"
// and the dictionary's ID in the value's envelope, so that a manager
// configured with this Compressor reads values written with or without it.
//
// # Dictionaries
//
// Small values compress far better with a dictionary built from typical
// sessions. Options.Dict takes either a dictionary in the Zstandard format
// (what `zstd --train` writes) or raw content (a few typical encoded
// sessions pasted together). Its ID, recorded with every value compressed
// with it, is the first 8 bytes of the dictionary's SHA-256 in hex (16
// characters), so two different dictionaries never share an ID. When the
// dictionary changes, list the old one in Options.ReadDicts until every
// value has been rewritten (session.Manager.MigrateAll with
// MigrateOptions.Reseal rewrites values whose layers or dictionary differ
// from the current configuration); a value whose dictionary is not held
// does not load (session.ErrCorrupt) and is never overwritten.
//
// # Limits
//
// Decompress refuses output longer than its maxSize (the manager passes
// session.Config.MaxBytes) before allocating it: a frame that declares a
// larger content size is refused from its header, and decoding stops at
// maxSize bytes for a frame that does not declare one.
package zstd

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"

	kzstd "github.com/klauspost/compress/zstd"

	"github.com/typedsession/session/codec"
)

// Name is the layer's name in the envelope: "zstd".
const Name = "zstd"

// Options configures a Compressor. The zero value means the defaults.
type Options struct {
	// Level is the compression level. Zero means kzstd.SpeedDefault
	// (about zstd level 3); kzstd.SpeedFastest, kzstd.SpeedBetterCompression
	// and kzstd.SpeedBestCompression trade speed for size.
	Level kzstd.EncoderLevel

	// Dict is the dictionary Compress uses: Zstandard format (from
	// `zstd --train`) or raw content. Nil means none.
	Dict []byte

	// ReadDicts are further dictionaries that Decompress accepts: those of
	// values written before Dict changed. Dict itself need not be listed.
	ReadDicts [][]byte
}

// Compressor is a zstd codec.Compressor. It is safe for concurrent use:
// the encoder and decoders underneath keep a pool of states (one per
// GOMAXPROCS), so concurrent calls do not allocate new ones. Make one with
// New and keep it for the life of the program; it needs no Close.
type Compressor struct {
	dictID  string
	enc     *kzstd.Encoder
	limited *kzstd.Decoder // DecodeAll stops at cap(dst)
	full    *kzstd.Decoder // for maxSize <= 0
	dicts   map[string]uint32
}

type dict struct {
	id     string // the envelope's ID
	zid    uint32 // the frame's dictionary ID
	raw    bool
	data   []byte
	encOpt kzstd.EOption
	decOpt kzstd.DOption
}

func parseDict(b []byte) (dict, error) {
	sum := sha256.Sum256(b)
	d := dict{id: hex.EncodeToString(sum[:8]), data: b}
	if zd, err := kzstd.InspectDictionary(b); err == nil {
		d.zid = zd.ID()
		d.encOpt, d.decOpt = kzstd.WithEncoderDict(b), kzstd.WithDecoderDicts(b)
		return d, nil
	}
	if len(b) < 8 {
		return d, errors.New("a raw dictionary must hold at least 8 bytes")
	}
	d.raw = true
	d.zid = binary.BigEndian.Uint32(sum[8:12]) | 1<<31 // never 0 (no dictionary)
	d.encOpt, d.decOpt = kzstd.WithEncoderDictRaw(d.zid, b), kzstd.WithDecoderDictRaw(d.zid, b)
	return d, nil
}

// New returns a Compressor with the given options. It fails for an
// unusable dictionary or two dictionaries with the same Zstandard ID.
func New(opts Options) (*Compressor, error) {
	level := opts.Level
	if level == 0 {
		level = kzstd.SpeedDefault
	}
	c := &Compressor{dicts: map[string]uint32{}}
	eopts := []kzstd.EOption{kzstd.WithEncoderLevel(level), kzstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0))}
	var dopts []kzstd.DOption
	byZID := map[uint32]string{}
	all := opts.ReadDicts
	if opts.Dict != nil {
		all = append([][]byte{opts.Dict}, all...)
	}
	for i, b := range all {
		d, err := parseDict(b)
		if err != nil {
			return nil, fmt.Errorf("zstd: dictionary %d: %w", i, err)
		}
		if _, ok := c.dicts[d.id]; ok {
			continue
		}
		if other, ok := byZID[d.zid]; ok {
			return nil, fmt.Errorf("zstd: dictionaries %s and %s have the same Zstandard ID %d", other, d.id, d.zid)
		}
		byZID[d.zid] = d.id
		c.dicts[d.id] = d.zid
		dopts = append(dopts, d.decOpt)
		if i == 0 && opts.Dict != nil {
			c.dictID = d.id
			eopts = append(eopts, d.encOpt)
		}
	}
	var err error
	if c.enc, err = kzstd.NewWriter(nil, eopts...); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	n := runtime.GOMAXPROCS(0)
	if c.limited, err = kzstd.NewReader(nil, append(dopts, kzstd.WithDecoderConcurrency(n), kzstd.WithDecodeAllCapLimit(true))...); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if c.full, err = kzstd.NewReader(nil, append(dopts, kzstd.WithDecoderConcurrency(n))...); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return c, nil
}

// Name returns "zstd".
func (c *Compressor) Name() string { return Name }

// DictID returns the ID of Options.Dict (16 hex digits), or "" without one.
func (c *Compressor) DictID() string { return c.dictID }

// Compress appends one zstd frame holding src, with the content size in
// its header, to dst.
func (c *Compressor) Compress(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst), nil
}

// Decompress appends the decompressed src to dst. src must have been
// compressed with the dictionary dictID ("" for none), which c must hold
// (Options.Dict or Options.ReadDicts). Output longer than maxSize bytes
// (maxSize <= 0: no limit) is refused before it is allocated, with an
// error matching codec.ErrOverLimit; a dictionary c does not hold gives
// codec.ErrNoDictionary. Every error matches codec.ErrDecompress.
func (c *Compressor) Decompress(dst, src []byte, dictID string, maxSize int) ([]byte, error) {
	var zid uint32
	if dictID != "" {
		id, ok := c.dicts[dictID]
		if !ok {
			return nil, fmt.Errorf("%w: zstd: no dictionary %q (Options.Dict, Options.ReadDicts)", codec.ErrNoDictionary, dictID)
		}
		zid = id
	}
	var h kzstd.Header
	if err := h.Decode(src); err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", codec.ErrDecompress, err)
	}
	// A frame names its dictionary, or none when it needs none (the
	// encoder leaves the ID out of an empty frame's header).
	if h.Skippable || (h.DictionaryID != zid && h.DictionaryID != 0) {
		return nil, fmt.Errorf("%w: zstd: the frame's dictionary is %d, the envelope's %q", codec.ErrDecompress, h.DictionaryID, dictID)
	}
	if maxSize <= 0 {
		out, err := c.full.DecodeAll(src, dst)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", codec.ErrDecompress, err)
		}
		return out, nil
	}
	room := maxSize
	if h.HasFCS {
		if h.FrameContentSize > uint64(maxSize) {
			return nil, fmt.Errorf("%w: zstd: %d bytes, more than %d", codec.ErrOverLimit, h.FrameContentSize, maxSize)
		}
		room = int(h.FrameContentSize)
	}
	if cap(dst)-len(dst) < room {
		dst = append(make([]byte, 0, len(dst)+room), dst...)
	}
	// DecodeAll stops at cap(dst): a frame larger than it declared, or
	// a second frame after it, fails rather than grows dst.
	out, err := c.limited.DecodeAll(src, dst[:len(dst):len(dst)+room])
	if err != nil {
		if !h.HasFCS && errors.Is(err, kzstd.ErrDecoderSizeExceeded) {
			// No declared size: the output ran past maxSize.
			return nil, fmt.Errorf("%w: zstd: more than %d bytes", codec.ErrOverLimit, maxSize)
		}
		return nil, fmt.Errorf("%w: zstd: %v", codec.ErrDecompress, err)
	}
	return out, nil
}

var _ codec.Compressor = (*Compressor)(nil)

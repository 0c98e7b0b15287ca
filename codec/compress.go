package codec

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Compressor is a compression layer between the codec and the envelope:
// the session manager compresses a payload longer than
// Config.CompressAbove bytes and records the compressor's Name (and
// DictID) in the envelope, so that a value says how to read it back.
// Implementations must be safe for concurrent use. Deflate (the standard
// library's) is here; zstd lives in a module of its own.
type Compressor interface {
	// Name is the layer's name in the envelope ("deflate", "zstd").
	Name() string
	// DictID names the dictionary Compress uses, or "" for none.
	DictID() string
	// Compress appends the compressed form of src to dst.
	Compress(dst, src []byte) ([]byte, error)
	// Decompress appends the decompressed form of src, compressed with
	// the dictionary dictID, to dst. It returns an error matching
	// ErrNoDictionary for a dictionary it does not hold, ErrOverLimit for
	// output longer than maxSize bytes (maxSize <= 0: no limit), found
	// before it allocates it all, and ErrDecompress for damaged input.
	Decompress(dst, src []byte, dictID string, maxSize int) ([]byte, error)
}

// Deflate is a Compressor on the standard library's compress/flate (RFC
// 1951), without a dictionary. Its zero value uses flate.DefaultCompression.
type Deflate struct {
	// Level is a compress/flate level; 0 means flate.DefaultCompression.
	Level int
}

// Name returns "deflate".
func (Deflate) Name() string { return "deflate" }

// DictID returns "": Deflate uses no dictionary.
func (Deflate) DictID() string { return "" }

var flateWriters sync.Map // level → *sync.Pool of *flate.Writer

func (d Deflate) level() int {
	if d.Level == 0 {
		return flate.DefaultCompression
	}
	return d.Level
}

// Compress appends the deflated form of src to dst.
func (d Deflate) Compress(dst, src []byte) ([]byte, error) {
	p, _ := flateWriters.LoadOrStore(d.level(), &sync.Pool{})
	pool := p.(*sync.Pool)
	buf := bytes.NewBuffer(dst)
	w, _ := pool.Get().(*flate.Writer)
	if w == nil {
		var err error
		if w, err = flate.NewWriter(buf, d.level()); err != nil {
			return nil, err
		}
	} else {
		w.Reset(buf)
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	pool.Put(w)
	return buf.Bytes(), nil
}

// Errors of Decompress. Every error a Compressor's Decompress returns
// matches ErrDecompress; one that is not damage of the data matches one of
// the others too, so that the session manager classes it by its cause.
var (
	// ErrDecompress reports compressed data that cannot be decompressed:
	// damaged, too large, or made with a dictionary the Compressor does
	// not hold.
	ErrDecompress = errors.New("codec: cannot decompress")
	// ErrOverLimit reports output longer than Decompress's maxSize. It
	// matches ErrDecompress.
	ErrOverLimit = fmt.Errorf("%w: the output is over the size limit", ErrDecompress)
	// ErrNoDictionary reports data compressed with a dictionary the
	// Compressor does not hold. It matches ErrDecompress.
	ErrNoDictionary = fmt.Errorf("%w: no such dictionary", ErrDecompress)
)

// Decompress appends the inflated form of src to dst, at most maxSize bytes.
func (Deflate) Decompress(dst, src []byte, dictID string, maxSize int) ([]byte, error) {
	if dictID != "" {
		return nil, fmt.Errorf("%w: deflate has no dictionary %q", ErrNoDictionary, dictID)
	}
	r := flate.NewReader(bytes.NewReader(src))
	defer r.Close()
	buf := bytes.NewBuffer(dst)
	var src2 io.Reader = r
	if maxSize > 0 {
		src2 = io.LimitReader(r, int64(maxSize)+1)
	}
	n, err := buf.ReadFrom(src2)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecompress, err)
	}
	if maxSize > 0 && n > int64(maxSize) {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrOverLimit, maxSize)
	}
	return buf.Bytes(), nil
}

package memstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/typedsession/session/internal/storeutil"
	"github.com/typedsession/session/store"
)

// The snapshot file: see the package doc for the format.

const (
	snapMagic  = "\x00typedsession-memstore2\n" // 24 bytes; the NUL keeps it apart from JSON
	recEntry   = 'E'
	recTrailer = 'Z'
	bufSize    = 256 << 10

	// Version 1, JSON, written by earlier versions and still read.
	v1Format = "typedsession-memstore"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ref is an entry of a shard, copied out (key and slice headers only) so
// that the snapshot writes it without holding the shard's lock.
type ref struct {
	key string
	e   entry
}

// snapshot writes every live entry to BackupPath atomically (a temp file in
// the same folder, fsync, rename, fsync of the folder), streaming: it holds
// one shard's references and a fixed buffer, never the whole snapshot. A
// cancelled ctx stops it and leaves the previous snapshot in place.
func (s *Store) snapshot(ctx context.Context) error {
	s.backup.Lock()
	defer s.backup.Unlock()
	path := s.opts.BackupPath
	err := storeutil.WriteFileAtomic(path, 0o600, func(w io.Writer) error {
		crc := crc32.New(castagnoli)
		bw := bufio.NewWriterSize(io.MultiWriter(w, crc), bufSize)
		bw.WriteString(snapMagic)
		var (
			refs    []ref
			count   uint64
			scratch = make([]byte, 0, 2*binary.MaxVarintLen64+1)
		)
		// The size hint: how many entries the maps hold now, so that the
		// restore can size its maps once.
		hint := 0
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.RLock()
			hint += len(sh.m)
			sh.mu.RUnlock()
		}
		bw.Write(binary.AppendUvarint(scratch, uint64(hint)))
		for i := range s.shards {
			if err := ctx.Err(); err != nil {
				return err
			}
			sh := &s.shards[i]
			refs = refs[:0]
			now := time.Now().UnixNano()
			sh.mu.RLock()
			for k, e := range sh.m {
				if e.live(now) {
					refs = append(refs, ref{k, e})
				}
			}
			sh.mu.RUnlock()
			// Stored values are never mutated, so writing them outside
			// the lock is safe.
			for _, r := range refs {
				scratch = append(scratch[:0], recEntry)
				scratch = binary.AppendUvarint(scratch, uint64(len(r.key)))
				bw.Write(scratch)
				bw.WriteString(r.key)
				scratch = binary.AppendUvarint(scratch[:0], uint64(len(r.e.value)))
				bw.Write(scratch)
				bw.Write(r.e.value)
				scratch = binary.AppendVarint(scratch[:0], r.e.expires)
				if _, err := bw.Write(scratch); err != nil {
					return err
				}
				count++
			}
			clear(refs) // do not keep the shard's values alive
		}
		scratch = append(scratch[:0], recTrailer)
		scratch = binary.AppendUvarint(scratch, count)
		bw.Write(scratch)
		if err := bw.Flush(); err != nil {
			return err
		}
		_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
		return err
	})
	if err != nil {
		return fmt.Errorf("memstore: write snapshot %s: %w", path, err)
	}
	return nil
}

// restore removes the temp files a crashed snapshot left and loads the
// snapshot at path, if there is one, into the (still unpublished) shards.
func (s *Store) restore(path string) error {
	// Every snapshot is written next to path: a folder that is missing
	// (a typo, a volume not mounted) would fail each of them, seen only
	// by OnError and at Close, and the sessions would be lost at the
	// restart.
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return fmt.Errorf("memstore: Options.BackupPath %s: its folder %s must exist: %w", path, dir, err)
	}
	if err := storeutil.RemoveStaleTemps(filepath.Dir(path), filepath.Base(path), 0); err != nil {
		return fmt.Errorf("memstore: remove the temp files of an interrupted snapshot next to %s: %w", path, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("memstore: read snapshot: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("memstore: read snapshot: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("memstore: snapshot %s is not a regular file", path)
	}
	br := bufio.NewReaderSize(f, bufSize)
	if head, _ := br.Peek(len(snapMagic)); string(head) == snapMagic {
		err = s.restoreV2(br, fi.Size())
	} else {
		err = s.restoreV1(br)
	}
	if err != nil {
		return fmt.Errorf("memstore: snapshot %s cannot be restored (left untouched; move it away to start empty): %w", path, err)
	}
	return nil
}

// snapReader reads a version 2 snapshot, hashing exactly the bytes it
// consumes and refusing a length longer than what is left of the file.
type snapReader struct {
	br   *bufio.Reader
	crc  hash.Hash32
	left int64 // bytes of the file not consumed yet
	tmp  [binary.MaxVarintLen64]byte
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrCorrupt, fmt.Sprintf(format, args...))
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("the file ends early (truncated)")
	}
	return err
}

func (r *snapReader) consume(b []byte) {
	r.crc.Write(b)
	r.left -= int64(len(b))
}

func (r *snapReader) byte() (byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		return 0, truncated(err)
	}
	r.tmp[0] = b
	r.consume(r.tmp[:1])
	return b, nil
}

func (r *snapReader) varint() (uint64, error) {
	var x uint64
	var shift uint
	for i := range binary.MaxVarintLen64 {
		b, err := r.br.ReadByte()
		if err != nil {
			return 0, truncated(err)
		}
		r.tmp[i] = b
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			r.consume(r.tmp[:i+1])
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, corrupt("a number overflows 64 bits")
}

// full reads n bytes into buf (grown if needed), refusing an n longer than
// the rest of the file before it allocates.
func (r *snapReader) full(buf []byte, n uint64) ([]byte, error) {
	if n > uint64(r.left) {
		return nil, corrupt("a length of %d bytes runs past the end of the file", n)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r.br, buf); err != nil {
		return nil, truncated(err)
	}
	r.consume(buf)
	return buf, nil
}

func (s *Store) restoreV2(br *bufio.Reader, size int64) error {
	r := &snapReader{br: br, crc: crc32.New(castagnoli), left: size}
	if _, err := r.full(make([]byte, len(snapMagic)), uint64(len(snapMagic))); err != nil {
		return err
	}
	hint, err := r.varint()
	if err != nil {
		return err
	}
	// Size the maps for the entries the writer counted, but never beyond
	// what the file can hold (a record takes at least 5 bytes).
	hint = min(hint, uint64(r.left)/5)
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry, hint/shardCount+hint/shardCount/8)
	}
	now := time.Now().UnixNano()
	keyBuf := make([]byte, store.MaxKeyLen)
	var count uint64
	for {
		kind, err := r.byte()
		if err != nil {
			return err
		}
		if kind == recTrailer {
			break
		}
		if kind != recEntry {
			return corrupt("record %d has kind %#x", count, kind)
		}
		n, err := r.varint()
		if err != nil {
			return err
		}
		if n == 0 || n > store.MaxKeyLen {
			return corrupt("record %d has a key of %d bytes", count, n)
		}
		kb, err := r.full(keyBuf, n)
		if err != nil {
			return err
		}
		key := string(kb)
		if err := store.CheckKey(key); err != nil {
			return corrupt("record %d: %v", count, err)
		}
		n, err = r.varint()
		if err != nil {
			return err
		}
		if s.opts.MaxValueBytes > 0 && n > uint64(s.opts.MaxValueBytes) {
			return fmt.Errorf("%w: the value of %s is %d bytes, the cap (Options.MaxValueBytes) is %d", store.ErrTooLarge, storeutil.QuoteKey(key), n, s.opts.MaxValueBytes)
		}
		value, err := r.full(nil, n)
		if err != nil {
			return err
		}
		if value == nil {
			value = []byte{}
		}
		u, err := r.varint()
		if err != nil {
			return err
		}
		expires := int64(u>>1) ^ -int64(u&1) // zig-zag, as binary.AppendVarint writes it
		count++
		if e := (entry{value: value, expires: expires}); e.live(now) {
			s.shard(key).m[key] = e
		}
	}
	want, err := r.varint()
	if err != nil {
		return err
	}
	if want != count {
		return corrupt("the trailer counts %d entries, the file holds %d", want, count)
	}
	sum := r.crc.Sum32()
	var stored [4]byte
	if _, err := io.ReadFull(br, stored[:]); err != nil {
		return truncated(err)
	}
	if got := binary.LittleEndian.Uint32(stored[:]); got != sum {
		return corrupt("checksum %#08x, computed %#08x", got, sum)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return corrupt("data after the trailer")
	}
	return nil
}

// v1Entry is an entry of a version 1 (JSON) snapshot.
type v1Entry struct {
	Key     string `json:"key"`
	Value   []byte `json:"value"`
	Expires int64  `json:"expires,omitempty"`
}

// restoreV1 streams a version 1 snapshot: one entry in memory at a time.
func (s *Store) restoreV1(r io.Reader) error {
	dec := json.NewDecoder(r)
	bad := func(err error) error {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return corrupt("not a memstore snapshot, or a damaged one: %v", err)
		}
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return corrupt("version 1 snapshot: %v", err)
		}
		return err
	}
	if tok, err := dec.Token(); err != nil {
		return bad(err)
	} else if tok != json.Delim('{') {
		return corrupt("not a memstore snapshot: it starts with %v", tok)
	}
	var (
		format  string
		version int
		now     = time.Now().UnixNano()
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(err)
		}
		switch tok {
		case "format":
			err = dec.Decode(&format)
		case "version":
			err = dec.Decode(&version)
		case "entries":
			err = s.restoreV1Entries(dec, now)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return bad(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return bad(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return corrupt("data after the snapshot's JSON object")
	}
	if format != v1Format || version != 1 {
		return fmt.Errorf("not a memstore snapshot of a known version (format %q, version %d)", format, version)
	}
	return nil
}

func (s *Store) restoreV1Entries(dec *json.Decoder, now int64) error {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err // null: no entries
	}
	if tok != json.Delim('[') {
		return corrupt("version 1 snapshot: entries is not an array")
	}
	for dec.More() {
		var e v1Entry
		if err := dec.Decode(&e); err != nil {
			return err
		}
		if err := store.CheckKey(e.Key); err != nil {
			s.opts.OnError(fmt.Errorf("memstore: version 1 snapshot entry %s skipped: %w", storeutil.QuoteKey(e.Key), err))
			continue
		}
		if s.opts.MaxValueBytes > 0 && int64(len(e.Value)) > s.opts.MaxValueBytes {
			return fmt.Errorf("%w: the value of %s is %d bytes, the cap (Options.MaxValueBytes) is %d", store.ErrTooLarge, storeutil.QuoteKey(e.Key), len(e.Value), s.opts.MaxValueBytes)
		}
		if e.Value == nil {
			e.Value = []byte{}
		}
		if en := (entry{value: e.Value, expires: e.Expires}); en.live(now) {
			s.shard(e.Key).m[e.Key] = en
		}
	}
	_, err = dec.Token() // ']'
	return err
}

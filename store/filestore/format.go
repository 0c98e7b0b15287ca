package filestore

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
)

// File names. A value file is named after its key in one of two ways:
//
//	"k" + base32(key)      when that name is at most maxDirectName bytes
//	"h" + hex(sha256(key)) otherwise (65 bytes, whatever the key's length)
//
// The base32 alphabet is the lower-case "extended hex" one, without
// padding: it uses only [0-9a-v], so names are safe on every file system,
// hold no '/', '.', NUL or reserved device name, and stay distinct on
// case-insensitive file systems. Every other name in dir (temp files, the
// lock folder, files somebody else put there) starts with a different
// character or fails to decode, and is not a key.
const (
	directPrefix  = 'k'
	hashedPrefix  = 'h'
	tempPattern   = ".tmp-*"
	tempPrefix    = ".tmp-"
	lockDir       = ".locks"
	maxDirectName = 200 // keys up to 125 bytes keep a readable, decodable name
)

var nameEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// fileName returns the name of the file that holds key.
func fileName(key string) string {
	if nameEncoding.EncodedLen(len(key))+1 <= maxDirectName {
		buf := make([]byte, 1+nameEncoding.EncodedLen(len(key)))
		buf[0] = directPrefix
		nameEncoding.Encode(buf[1:], []byte(key))
		return string(buf)
	}
	sum := sha256.Sum256([]byte(key))
	return string(hashedPrefix) + hex.EncodeToString(sum[:])
}

// nameKind tells what a directory entry is. For a direct name it also
// returns the key the name encodes.
type nameKind int

const (
	foreignName nameKind = iota // not ours: ignored by Scan and the sweep
	tempName                    // a temp file of ours, perhaps left by a crash
	directName                  // a value file whose name is its key
	hashedName                  // a value file whose key is in its header
)

func classify(name string) (nameKind, string) {
	switch {
	case strings.HasPrefix(name, tempPrefix):
		return tempName, ""
	case name == "":
		return foreignName, ""
	case name[0] == directPrefix:
		enc := name[1:]
		if len(enc) > maxDirectName {
			return foreignName, ""
		}
		key, err := nameEncoding.DecodeString(enc)
		if err != nil || nameEncoding.EncodeToString(key) != enc {
			return foreignName, ""
		}
		return directName, string(key)
	case name[0] == hashedPrefix:
		if len(name) != 1+2*sha256.Size {
			return foreignName, ""
		}
		for _, c := range name[1:] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return foreignName, ""
			}
		}
		return hashedName, ""
	}
	return foreignName, ""
}

// File format, version 1. All integers are big-endian.
//
//	offset  size  field
//	0       4     magic "TSF" followed by the format version, 0x01
//	4       8     expiry: absolute Unix time in nanoseconds, 0 = never
//	12      4     key length K
//	16      4     value length V
//	20      4     CRC-32C of bytes 0..19, the key and the value
//	24      K     the key, exactly as given
//	24+K    V     the value
//
// The file is exactly 24+K+V bytes long. Anything else is corrupt.
const headerSize = 24

var magic = [4]byte{'T', 'S', 'F', 1}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encode returns the whole file for key, value and expiry.
func encode(key string, value []byte, expiry int64) []byte {
	buf := make([]byte, headerSize+len(key)+len(value))
	copy(buf, magic[:])
	binary.BigEndian.PutUint64(buf[4:], uint64(expiry))
	binary.BigEndian.PutUint32(buf[12:], uint32(len(key)))
	binary.BigEndian.PutUint32(buf[16:], uint32(len(value)))
	copy(buf[headerSize:], key)
	copy(buf[headerSize+len(key):], value)
	crc := crc32.Update(0, castagnoli, buf[:20])
	crc = crc32.Update(crc, castagnoli, buf[headerSize:])
	binary.BigEndian.PutUint32(buf[20:], crc)
	return buf
}

// record is a parsed file. value aliases the buffer it was parsed from.
type record struct {
	expiry int64
	key    string
	value  []byte
}

// decode parses a whole file. Its error is a formatError.
func decode(data []byte) (record, error) {
	if len(data) < headerSize {
		return record{}, formatErrorf("%d bytes, shorter than the %d-byte header", len(data), headerSize)
	}
	if [4]byte(data[:4]) != magic {
		return record{}, formatErrorf("bad magic %q, want %q", data[:4], magic[:])
	}
	kl := uint64(binary.BigEndian.Uint32(data[12:]))
	vl := uint64(binary.BigEndian.Uint32(data[16:]))
	if want := headerSize + kl + vl; uint64(len(data)) != want {
		return record{}, formatErrorf("%d bytes, header says %d", len(data), want)
	}
	crc := crc32.Update(0, castagnoli, data[:20])
	crc = crc32.Update(crc, castagnoli, data[headerSize:])
	if got := binary.BigEndian.Uint32(data[20:]); got != crc {
		return record{}, formatErrorf("checksum %08x, header says %08x", crc, got)
	}
	return record{
		expiry: int64(binary.BigEndian.Uint64(data[4:])),
		key:    string(data[headerSize : headerSize+kl]),
		value:  data[headerSize+kl:],
	}, nil
}

// readHeader reads the expiry and the key of a file without reading its
// value, for Scan and the sweep. It checks what it reads (magic, lengths
// against the file's size) but not the checksum, which covers the value.
func readHeader(path string) (expiry int64, key string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, "", formatErrorf("shorter than the %d-byte header", headerSize)
		}
		return 0, "", err
	}
	if [4]byte(h[:4]) != magic {
		return 0, "", formatErrorf("bad magic %q, want %q", h[:4], magic[:])
	}
	kl := int64(binary.BigEndian.Uint32(h[12:]))
	vl := int64(binary.BigEndian.Uint32(h[16:]))
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	if want := headerSize + kl + vl; fi.Size() != want {
		return 0, "", formatErrorf("%d bytes, header says %d", fi.Size(), want)
	}
	k := make([]byte, kl)
	if _, err := io.ReadFull(f, k); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, "", formatErrorf("file ends inside the key")
		}
		return 0, "", err
	}
	return int64(binary.BigEndian.Uint64(h[4:])), string(k), nil
}

// formatError says what is wrong with a file that exists but is not a valid
// value file. Callers turn it into an error that wraps ErrCorrupt.
type formatError string

func (e formatError) Error() string { return string(e) }

func formatErrorf(format string, args ...any) error {
	return formatError(fmt.Sprintf(format, args...))
}

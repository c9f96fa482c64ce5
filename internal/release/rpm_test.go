package release

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"strconv"
)

// This file reads the rpm packages goreleaser (nfpm) writes, so that the
// release test can check them on machines without rpm(8): the lead, the
// signature and main header (RPM v3 file format, as in rpm's
// docs/manual/format.md) and a gzip-compressed newc cpio payload.

// rpmFile is one entry of an rpm's file list, as its header states it.
type rpmFile struct {
	Path string
	Size int64
	Mode fs.FileMode
}

// rpmPackage is what the release test needs from an rpm file.
type rpmPackage struct {
	Name, Version, Release, Arch string
	PayloadFormat                string // "cpio"
	PayloadCompressor            string // "gzip", "xz", "zstd", ...
	Files                        []rpmFile
	payload                      []byte // compressed payload, after the headers
}

// rpm header tags used here (rpmtag.h).
const (
	tagName              = 1000
	tagVersion           = 1001
	tagRelease           = 1002
	tagFileSizes         = 1028
	tagFileModes         = 1030
	tagArch              = 1022
	tagDirIndexes        = 1116
	tagBasenames         = 1117
	tagDirNames          = 1118
	tagPayloadFormat     = 1124
	tagPayloadCompressor = 1125
	tagLongFileSizes     = 5008
)

// rpm header data types.
const (
	typeInt16       = 3
	typeInt32       = 4
	typeInt64       = 5
	typeString      = 6
	typeStringArray = 8
	typeI18NString  = 9
)

const (
	rpmLeadSize   = 96
	maxIndexCount = 1 << 16
)

var (
	rpmLeadMagic   = []byte{0xed, 0xab, 0xee, 0xdb}
	rpmHeaderMagic = []byte{0x8e, 0xad, 0xe8, 0x01}
)

// rpmHeader is one parsed header structure: its index and data store.
type rpmHeader struct {
	start   int // byte offset of the header in the file, for errors
	entries map[int32]rpmIndexEntry
	store   []byte
}

type rpmIndexEntry struct {
	typ    uint32
	offset uint32
	count  uint32
}

// readRPM parses an rpm file held in data. Errors name the byte offset.
func readRPM(data []byte) (*rpmPackage, error) {
	if len(data) < rpmLeadSize {
		return nil, fmt.Errorf("rpm: %d bytes, shorter than the %d-byte lead", len(data), rpmLeadSize)
	}
	if !bytes.Equal(data[:4], rpmLeadMagic) {
		return nil, fmt.Errorf("rpm: offset 0: lead magic %x, want %x", data[:4], rpmLeadMagic)
	}
	off := rpmLeadSize
	// The signature header's digests are not checked here.
	_, n, err := readRPMHeader(data, off)
	if err != nil {
		return nil, fmt.Errorf("rpm: signature header: %w", err)
	}
	off += n
	if pad := off % 8; pad != 0 { // the signature header is padded to 8 bytes
		off += 8 - pad
	}
	h, n, err := readRPMHeader(data, off)
	if err != nil {
		return nil, fmt.Errorf("rpm: main header: %w", err)
	}
	off += n

	p := &rpmPackage{payload: data[off:]}
	for _, s := range []struct {
		tag int32
		dst *string
	}{
		{tagName, &p.Name}, {tagVersion, &p.Version}, {tagRelease, &p.Release}, {tagArch, &p.Arch},
		{tagPayloadFormat, &p.PayloadFormat}, {tagPayloadCompressor, &p.PayloadCompressor},
	} {
		v, err := h.strings(s.tag)
		if err != nil {
			return nil, err
		}
		if len(v) != 1 {
			return nil, fmt.Errorf("rpm: tag %d: %d strings, want 1", s.tag, len(v))
		}
		*s.dst = v[0]
	}
	if _, ok := h.entries[tagBasenames]; !ok {
		return p, nil // a package without files
	}
	base, err := h.strings(tagBasenames)
	if err != nil {
		return nil, err
	}
	dirs, err := h.strings(tagDirNames)
	if err != nil {
		return nil, err
	}
	dirIdx, err := h.ints(tagDirIndexes)
	if err != nil {
		return nil, err
	}
	sizeTag := int32(tagFileSizes)
	if _, ok := h.entries[tagLongFileSizes]; ok {
		sizeTag = tagLongFileSizes
	}
	sizes, err := h.ints(sizeTag)
	if err != nil {
		return nil, err
	}
	modes, err := h.ints(tagFileModes)
	if err != nil {
		return nil, err
	}
	if len(dirIdx) != len(base) || len(sizes) != len(base) || len(modes) != len(base) {
		return nil, fmt.Errorf("rpm: main header at offset %d: %d basenames but %d dir indexes, %d sizes, %d modes",
			h.start, len(base), len(dirIdx), len(sizes), len(modes))
	}
	for i, b := range base {
		if dirIdx[i] < 0 || dirIdx[i] >= int64(len(dirs)) {
			return nil, fmt.Errorf("rpm: main header at offset %d: file %q: dir index %d of %d dirs", h.start, b, dirIdx[i], len(dirs))
		}
		p.Files = append(p.Files, rpmFile{Path: dirs[dirIdx[i]] + b, Size: sizes[i], Mode: unixMode(uint32(modes[i]))})
	}
	return p, nil
}

// readRPMHeader parses the header structure at off and returns it with its
// length in bytes.
func readRPMHeader(data []byte, off int) (*rpmHeader, int, error) {
	if off+16 > len(data) {
		return nil, 0, fmt.Errorf("offset %d: file ends inside the header intro", off)
	}
	if !bytes.Equal(data[off:off+4], rpmHeaderMagic) {
		return nil, 0, fmt.Errorf("offset %d: header magic %x, want %x", off, data[off:off+4], rpmHeaderMagic)
	}
	count := binary.BigEndian.Uint32(data[off+8:])
	size := binary.BigEndian.Uint32(data[off+12:])
	if count > maxIndexCount {
		return nil, 0, fmt.Errorf("offset %d: %d index entries (more than %d)", off+8, count, maxIndexCount)
	}
	indexStart := off + 16
	storeStart := indexStart + 16*int(count)
	if uint64(storeStart)+uint64(size) > uint64(len(data)) {
		return nil, 0, fmt.Errorf("offset %d: header of %d entries and %d data bytes runs past the end of the file (%d bytes)",
			off, count, size, len(data))
	}
	h := &rpmHeader{
		start:   off,
		entries: make(map[int32]rpmIndexEntry, count),
		store:   data[storeStart : storeStart+int(size)],
	}
	for i := 0; i < int(count); i++ {
		e := data[indexStart+16*i:]
		tag := int32(binary.BigEndian.Uint32(e))
		h.entries[tag] = rpmIndexEntry{
			typ:    binary.BigEndian.Uint32(e[4:]),
			offset: binary.BigEndian.Uint32(e[8:]),
			count:  binary.BigEndian.Uint32(e[12:]),
		}
	}
	return h, storeStart + int(size) - off, nil
}

// strings returns a STRING, STRING_ARRAY or I18NSTRING tag's values.
func (h *rpmHeader) strings(tag int32) ([]string, error) {
	e, ok := h.entries[tag]
	if !ok {
		return nil, fmt.Errorf("rpm: header at offset %d: no tag %d", h.start, tag)
	}
	switch e.typ {
	case typeString, typeStringArray, typeI18NString:
	default:
		return nil, fmt.Errorf("rpm: header at offset %d: tag %d has type %d, not a string type", h.start, tag, e.typ)
	}
	if e.count > uint32(len(h.store)) {
		return nil, fmt.Errorf("rpm: header at offset %d: tag %d: %d strings in a %d-byte store", h.start, tag, e.count, len(h.store))
	}
	out := make([]string, 0, e.count)
	pos := int(e.offset)
	for i := uint32(0); i < e.count; i++ {
		if pos < 0 || pos >= len(h.store) {
			return nil, fmt.Errorf("rpm: header at offset %d: tag %d: string %d starts outside the store", h.start, tag, i)
		}
		end := bytes.IndexByte(h.store[pos:], 0)
		if end < 0 {
			return nil, fmt.Errorf("rpm: header at offset %d: tag %d: string %d has no terminating NUL", h.start, tag, i)
		}
		out = append(out, string(h.store[pos:pos+end]))
		pos += end + 1
	}
	return out, nil
}

// ints returns an INT16, INT32 or INT64 tag's values (INT16 and INT32 as
// unsigned, which is how rpm stores modes and sizes).
func (h *rpmHeader) ints(tag int32) ([]int64, error) {
	e, ok := h.entries[tag]
	if !ok {
		return nil, fmt.Errorf("rpm: header at offset %d: no tag %d", h.start, tag)
	}
	var width int
	switch e.typ {
	case typeInt16:
		width = 2
	case typeInt32:
		width = 4
	case typeInt64:
		width = 8
	default:
		return nil, fmt.Errorf("rpm: header at offset %d: tag %d has type %d, not an integer type", h.start, tag, e.typ)
	}
	end := uint64(e.offset) + uint64(e.count)*uint64(width)
	if end > uint64(len(h.store)) {
		return nil, fmt.Errorf("rpm: header at offset %d: tag %d: %d values at %d run past the %d-byte store", h.start, tag, e.count, e.offset, len(h.store))
	}
	out := make([]int64, e.count)
	b := h.store[e.offset:end]
	for i := range out {
		switch width {
		case 2:
			out[i] = int64(binary.BigEndian.Uint16(b[2*i:]))
		case 4:
			out[i] = int64(binary.BigEndian.Uint32(b[4*i:]))
		case 8:
			out[i] = int64(binary.BigEndian.Uint64(b[8*i:]))
		}
	}
	return out, nil
}

// unixMode converts st_mode bits to an fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	}
	return mode
}

// payloadFiles decompresses the payload and returns the regular files in
// it by path ("./usr/bin/x" becomes "/usr/bin/x").
func (p *rpmPackage) payloadFiles() (map[string][]byte, error) {
	if p.PayloadFormat != "cpio" {
		return nil, fmt.Errorf("rpm: payload format %q, want cpio", p.PayloadFormat)
	}
	if p.PayloadCompressor != "gzip" {
		return nil, fmt.Errorf("rpm: payload compressor %q: this check reads gzip only", p.PayloadCompressor)
	}
	zr, err := gzip.NewReader(bytes.NewReader(p.payload))
	if err != nil {
		return nil, fmt.Errorf("rpm: payload: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("rpm: payload: %w", err)
	}
	return readCpioNewc(raw)
}

// readCpioNewc reads a "newc" (070701) cpio archive. Errors name the byte
// offset in the uncompressed archive.
func readCpioNewc(b []byte) (map[string][]byte, error) {
	const hdrLen = 110
	files := map[string][]byte{}
	off := 0
	for {
		if off+hdrLen > len(b) {
			return nil, fmt.Errorf("cpio: offset %d: archive ends without a TRAILER!!! entry", off)
		}
		h := b[off : off+hdrLen]
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("cpio: offset %d: magic %q, want 070701", off, h[:6])
		}
		field := func(i int) (int, error) {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return 0, fmt.Errorf("cpio: offset %d: field %d: %w", off+6+8*i, i, err)
			}
			return int(v), nil
		}
		mode, err := field(1)
		if err != nil {
			return nil, err
		}
		size, err := field(6)
		if err != nil {
			return nil, err
		}
		nameSize, err := field(11)
		if err != nil {
			return nil, err
		}
		nameEnd := off + hdrLen + nameSize
		if nameSize < 1 || nameEnd > len(b) {
			return nil, fmt.Errorf("cpio: offset %d: name of %d bytes runs past the end", off, nameSize)
		}
		name := string(b[off+hdrLen : nameEnd-1])
		dataStart := align4(nameEnd)
		dataEnd := dataStart + size
		if dataEnd > len(b) || dataEnd < dataStart {
			return nil, fmt.Errorf("cpio: offset %d: %q: %d data bytes run past the end", off, name, size)
		}
		if name == "TRAILER!!!" {
			return files, nil
		}
		if uint32(mode)&0o170000 == 0o100000 {
			path := name
			if len(path) > 0 && path[0] == '.' {
				path = path[1:]
			}
			if _, dup := files[path]; dup {
				return nil, fmt.Errorf("cpio: offset %d: %q appears twice", off, name)
			}
			files[path] = b[dataStart:dataEnd]
		}
		off = align4(dataEnd)
	}
}

func align4(n int) int { return (n + 3) &^ 3 }

/*
 * Optional C fast paths for the subunit v2 codec in proctor/wire/v2.py.
 *
 * The pure-Python codec is the reference and handles everything; this module
 * only accelerates the common case and hands anything unusual back to it:
 *
 *   scan(buf, pos, events) -> int
 *       Decode consecutive well-formed packets starting at buf[pos] and append
 *       an Event for each to `events`. Stops at the first byte that is not the
 *       start of a complete, valid packet (text, a bad packet, a packet still
 *       arriving) and returns its offset; Python decides what that byte is.
 *       When that is buf[pos] itself and it starts a packet still arriving (its
 *       header, as far as it goes, valid; the bytes it claims not all there),
 *       returns -1 - pos instead, so Python need not parse the header again.
 *
 *   encode(events, fallback) -> bytes
 *       Encode each event; an event this code does not handle (a string that
 *       needs validation errors reported, content that needs chunking, a value
 *       out of range) is passed to `fallback`, which returns its bytes.
 *
 *   configure(event_type, statuses) must be called once before either. It
 *       checks that event_type._fields are the ten fields below, in this
 *       order, and that statuses[i] == i, and raises TypeError otherwise: this
 *       code reads and writes an Event by position.
 *
 * Tests run the whole codec suite with and without this module and check that
 * both give identical results on property-generated and fuzzed input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* CRC-32 (ISO-HDLC, as zlib.crc32), slicing by 4. Built at import. */
static uint32_t crc_table[4][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 4; t++) {
            c = crc_table[0][c & 0xFF] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

static PyObject *zlib_crc32 = NULL; /* zlib.crc32: much faster on large packets */
#define LARGE_CRC 16384

static uint32_t crc32_of(const unsigned char *p, Py_ssize_t n) {
    if (n >= LARGE_CRC && zlib_crc32 != NULL) {
        PyObject *view = PyMemoryView_FromMemory((char *)p, n, PyBUF_READ);
        if (view != NULL) {
            PyObject *r = PyObject_CallOneArg(zlib_crc32, view);
            Py_DECREF(view);
            if (r != NULL) {
                unsigned long v = PyLong_AsUnsignedLongMask(r);
                Py_DECREF(r);
                if (!PyErr_Occurred()) return (uint32_t)v;
            }
        }
        PyErr_Clear(); /* fall back to the table */
    }
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 4) {
        c ^= (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
        c = crc_table[3][c & 0xFF] ^ crc_table[2][(c >> 8) & 0xFF] ^ crc_table[1][(c >> 16) & 0xFF] ^
            crc_table[0][c >> 24];
        p += 4;
        n -= 4;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static PyTypeObject *event_type = NULL;
static PyObject *statuses = NULL; /* tuple of the 8 Status members */
static PyObject *empty_frozenset = NULL;
static PyObject *empty_bytes = NULL;

#define FLAG_TEST_ID 0x0800
#define FLAG_ROUTE_CODE 0x0400
#define FLAG_TIMESTAMP 0x0200
#define FLAG_RUNNABLE 0x0100
#define FLAG_TAGS 0x0080
#define FLAG_FILE_CONTENT 0x0040
#define FLAG_MIME_TYPE 0x0020
#define FLAG_EOF 0x0010
#define MAX_PACKET 4194303

/* Event's fields, in the order this code reads and writes them (wire/event.py). */
static const char *const event_fields[] = {
    "test_id", "status", "tags", "runnable", "file_name",
    "file_bytes", "eof", "mime_type", "route_code", "timestamp",
};
#define EVENT_FIELD_COUNT 10
#define EVENT_FIELDS_TEXT                                                                          \
    "(test_id, status, tags, runnable, file_name, file_bytes, eof, mime_type, route_code, "      \
    "timestamp)"

/* 0 when `type` has exactly event_fields as its _fields; else -1 with TypeError set. */
static int check_event_fields(PyObject *type) {
    PyObject *fields = PyObject_GetAttrString(type, "_fields");
    if (fields == NULL) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "the event type %R has no _fields; the C codec needs an Event with the fields "
                     EVENT_FIELDS_TEXT,
                     type);
        return -1;
    }
    int same = PyTuple_Check(fields) && PyTuple_GET_SIZE(fields) == EVENT_FIELD_COUNT;
    for (Py_ssize_t i = 0; same && i < EVENT_FIELD_COUNT; i++) {
        PyObject *name = PyTuple_GET_ITEM(fields, i);
        same = PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, event_fields[i]) == 0;
    }
    if (!same) {
        PyErr_Format(PyExc_TypeError,
                     "the event type's fields are %R, but the C codec reads and writes an Event by "
                     "position as " EVENT_FIELDS_TEXT
                     ": change src/proctor/wire/_speedups.c with wire/event.py",
                     fields);
    }
    Py_DECREF(fields);
    return same ? 0 : -1;
}

/* 0 when statuses[i] == i for each of the 8 (the wire value indexes the tuple). */
static int check_statuses(PyObject *stats) {
    for (Py_ssize_t i = 0; i < 8; i++) {
        long value = PyLong_AsLong(PyTuple_GET_ITEM(stats, i));
        if (value == -1 && PyErr_Occurred()) return -1;
        if (value != i) {
            PyErr_Format(PyExc_TypeError,
                         "statuses[%zd] is %R; the C codec needs the 8 statuses in wire order", i,
                         PyTuple_GET_ITEM(stats, i));
            return -1;
        }
    }
    return 0;
}

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *type, *stats;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &type, &PyTuple_Type, &stats))
        return NULL;
    if (PyTuple_GET_SIZE(stats) != 8) {
        PyErr_SetString(PyExc_ValueError, "statuses must hold 8 members");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "the event type must be a tuple subclass");
        return NULL;
    }
    if (check_event_fields(type) < 0 || check_statuses(stats) < 0)
        return NULL;
    if (zlib_crc32 == NULL) {
        PyObject *zlib = PyImport_ImportModule("zlib");
        if (zlib != NULL) {
            zlib_crc32 = PyObject_GetAttrString(zlib, "crc32");
            Py_DECREF(zlib);
        }
        PyErr_Clear(); /* without zlib the table does all the work */
    }
    Py_INCREF(type);
    Py_XSETREF(event_type, (PyTypeObject *)type);
    Py_INCREF(stats);
    Py_XSETREF(statuses, stats);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- decoding */

/* Read a varint at p (bounded by end). Returns bytes consumed, 0 on overrun. */
static inline int read_varint(const unsigned char *p, const unsigned char *end, uint32_t *out) {
    if (p >= end) return 0;
    unsigned char first = p[0];
    switch (first & 0xC0) {
    case 0x00:
        *out = first;
        return 1;
    case 0x40:
        if (end - p < 2) return 0;
        *out = ((uint32_t)(first & 0x3F) << 8) | p[1];
        return 2;
    case 0x80:
        if (end - p < 3) return 0;
        *out = ((uint32_t)(first & 0x3F) << 16) | ((uint32_t)p[1] << 8) | p[2];
        return 3;
    default:
        if (end - p < 4) return 0;
        *out = ((uint32_t)(first & 0x3F) << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        return 4;
    }
}

/* Read a validated string; returns a new reference or NULL (no exception set) when invalid. */
static PyObject *read_string(const unsigned char **pp, const unsigned char *end) {
    uint32_t length;
    int used = read_varint(*pp, end, &length);
    if (!used) return NULL;
    const unsigned char *start = *pp + used;
    if ((Py_ssize_t)length > end - start) return NULL;
    if (length && memchr(start, 0, length) != NULL) return NULL;
    PyObject *s = PyUnicode_DecodeUTF8((const char *)start, length, "strict");
    if (s == NULL) {
        PyErr_Clear();
        return NULL;
    }
    *pp = start + length;
    return s;
}

/* Skip a varint-prefixed string; 0 when it overruns. */
static inline int skip_string(const unsigned char **pp, const unsigned char *end) {
    uint32_t n;
    int used = read_varint(*pp, end, &n);
    if (!used) return 0;
    if ((Py_ssize_t)n > end - (*pp + used)) return 0;
    *pp += used + n;
    return 1;
}

/* Whether the fields the flags announce end exactly at `end` (no objects made). */
static int fields_fill(const unsigned char *q, const unsigned char *end, unsigned int flags) {
    uint32_t v;
    int used;
    if (flags & FLAG_TIMESTAMP) {
        if (end - q < 4) return 0;
        q += 4;
        if (!(used = read_varint(q, end, &v))) return 0;
        q += used;
    }
    if ((flags & FLAG_TEST_ID) && !skip_string(&q, end)) return 0;
    if (flags & FLAG_TAGS) {
        if (!(used = read_varint(q, end, &v))) return 0;
        q += used;
        if (v > (uint32_t)(end - q)) return 0;
        for (uint32_t i = 0; i < v; i++)
            if (!skip_string(&q, end)) return 0;
    }
    if ((flags & FLAG_MIME_TYPE) && !skip_string(&q, end)) return 0;
    if (flags & FLAG_FILE_CONTENT) {
        if (!skip_string(&q, end)) return 0;
        if (!(used = read_varint(q, end, &v))) return 0;
        q += used;
        if ((Py_ssize_t)v > end - q) return 0;
        q += v;
    }
    if ((flags & FLAG_ROUTE_CODE) && !skip_string(&q, end)) return 0;
    return q == end;
}

/* Parse one packet at buf[pos]. Returns the packet length and sets *event, or 0 if
 * the packet is not complete and valid (nothing set, no exception), or -1 on a
 * real error (exception set). */
#define INCOMPLETE (-2)

/* Returns INCOMPLETE (nothing set, no exception) when the packet is still
 * arriving: the header is cut short, or valid and claiming more bytes than
 * there are (the same test as _v2_decode._incomplete). */
static Py_ssize_t parse_one(const unsigned char *buf, Py_ssize_t size, Py_ssize_t pos, PyObject **event) {
    const unsigned char *p = buf + pos;
    Py_ssize_t avail = size - pos;
    if (avail < 1 || p[0] != 0xB3) return 0;
    if (avail < 4) return INCOMPLETE;
    unsigned int flags = ((unsigned int)p[1] << 8) | p[2];
    if ((flags & 0xF008) != 0x2000) return 0;
    uint32_t length;
    Py_ssize_t fields_at;
    switch (p[3] & 0xC0) {
    case 0x00:
        length = p[3];
        fields_at = 4;
        break;
    case 0x40:
        if (avail < 5) return INCOMPLETE;
        length = ((uint32_t)(p[3] & 0x3F) << 8) | p[4];
        fields_at = 5;
        break;
    case 0x80:
        if (avail < 6) return INCOMPLETE;
        length = ((uint32_t)(p[3] & 0x3F) << 16) | ((uint32_t)p[4] << 8) | p[5];
        fields_at = 6;
        break;
    default:
        return 0;
    }
    if (length < 8 || (Py_ssize_t)length < fields_at + 4) return 0;
    if ((Py_ssize_t)length > avail) return INCOMPLETE;
    const unsigned char *crc_at = p + length - 4;
    /* The fields must fill the packet exactly: checked before the CRC, so a
     * stray 0xB3 is rejected without checksumming the bytes it claims. */
    if (!fields_fill(p + fields_at, crc_at, flags)) return 0;
    uint32_t stored = ((uint32_t)crc_at[0] << 24) | ((uint32_t)crc_at[1] << 16) | ((uint32_t)crc_at[2] << 8) | crc_at[3];
    uint32_t calculated = crc32_of(p, (Py_ssize_t)length - 4);
    if (stored != calculated) return 0;

    const unsigned char *q = p + fields_at;
    const unsigned char *end = crc_at;
    PyObject *timestamp = Py_None, *test_id = Py_None, *tags = NULL, *mime = Py_None;
    PyObject *file_name = Py_None, *file_bytes = NULL, *route = Py_None;
    Py_INCREF(Py_None); Py_INCREF(Py_None); Py_INCREF(Py_None); Py_INCREF(Py_None); Py_INCREF(Py_None);
    int ok = 0; /* 1 when the packet parsed */

    if (flags & FLAG_TIMESTAMP) {
        if (end - q < 4) goto done;
        uint32_t seconds = ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3];
        uint32_t nanos;
        int used = read_varint(q + 4, end, &nanos);
        if (!used) goto done;
        q += 4 + used;
        Py_DECREF(timestamp);
        timestamp = PyLong_FromLongLong((long long)seconds * 1000000000LL + nanos);
        if (timestamp == NULL) goto fail;
    }
    if (flags & FLAG_TEST_ID) {
        PyObject *s = read_string(&q, end);
        if (s == NULL) goto done;
        Py_DECREF(test_id);
        test_id = s;
    }
    if (flags & FLAG_TAGS) {
        uint32_t count;
        int used = read_varint(q, end, &count);
        if (!used) goto done;
        q += used;
        if (count > (uint32_t)(end - q)) goto done; /* each tag needs at least one byte */
        PyObject *list = PyList_New(0);
        if (list == NULL) goto fail;
        for (uint32_t i = 0; i < count; i++) {
            PyObject *s = read_string(&q, end);
            if (s == NULL) {
                Py_DECREF(list);
                goto done;
            }
            if (PyList_Append(list, s) < 0) {
                Py_DECREF(s);
                Py_DECREF(list);
                goto fail;
            }
            Py_DECREF(s);
        }
        tags = PyFrozenSet_New(list);
        Py_DECREF(list);
        if (tags == NULL) goto fail;
    }
    if (flags & FLAG_MIME_TYPE) {
        PyObject *s = read_string(&q, end);
        if (s == NULL) goto done;
        Py_DECREF(mime);
        mime = s;
    }
    if (flags & FLAG_FILE_CONTENT) {
        PyObject *s = read_string(&q, end);
        if (s == NULL) goto done;
        Py_DECREF(file_name);
        file_name = s;
        uint32_t n;
        int used = read_varint(q, end, &n);
        if (!used) goto done;
        q += used;
        if ((Py_ssize_t)n > end - q) goto done;
        file_bytes = PyBytes_FromStringAndSize((const char *)q, n);
        if (file_bytes == NULL) goto fail;
        q += n;
    }
    if (flags & FLAG_ROUTE_CODE) {
        PyObject *s = read_string(&q, end);
        if (s == NULL) goto done;
        Py_DECREF(route);
        route = s;
    }
    ok = (q == end);
done:
    if (ok) {
        PyObject *ev = event_type->tp_alloc(event_type, 10);
        if (ev == NULL) goto fail;
        if (tags == NULL) { tags = empty_frozenset; Py_INCREF(tags); }
        if (file_bytes == NULL) { file_bytes = empty_bytes; Py_INCREF(file_bytes); }
        PyObject *status = PyTuple_GET_ITEM(statuses, flags & 7);
        Py_INCREF(status);
        PyObject *runnable = (flags & FLAG_RUNNABLE) ? Py_True : Py_False;
        Py_INCREF(runnable);
        PyObject *eof = (flags & FLAG_EOF) ? Py_True : Py_False;
        Py_INCREF(eof);
        PyTuple_SET_ITEM(ev, 0, test_id);
        PyTuple_SET_ITEM(ev, 1, status);
        PyTuple_SET_ITEM(ev, 2, tags);
        PyTuple_SET_ITEM(ev, 3, runnable);
        PyTuple_SET_ITEM(ev, 4, file_name);
        PyTuple_SET_ITEM(ev, 5, file_bytes);
        PyTuple_SET_ITEM(ev, 6, eof);
        PyTuple_SET_ITEM(ev, 7, mime);
        PyTuple_SET_ITEM(ev, 8, route);
        PyTuple_SET_ITEM(ev, 9, timestamp);
        *event = ev;
        return (Py_ssize_t)length;
    }
    Py_DECREF(timestamp); Py_DECREF(test_id); Py_XDECREF(tags); Py_DECREF(mime);
    Py_DECREF(file_name); Py_XDECREF(file_bytes); Py_DECREF(route);
    return 0;
fail:
    Py_XDECREF(timestamp); Py_XDECREF(test_id); Py_XDECREF(tags); Py_XDECREF(mime);
    Py_XDECREF(file_name); Py_XDECREF(file_bytes); Py_XDECREF(route);
    return -1;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    PyObject *events;
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure() has not been called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*nO!", &view, &pos, &PyList_Type, &events))
        return NULL;
    const unsigned char *buf = (const unsigned char *)view.buf;
    Py_ssize_t size = view.len;
    if (pos < 0) pos = 0;
    Py_ssize_t start = pos;
    while (pos < size && buf[pos] == 0xB3) {
        PyObject *event = NULL;
        Py_ssize_t used = parse_one(buf, size, pos, &event);
        if (used == INCOMPLETE) {
            if (pos == start) pos = -1 - pos;
            break;
        }
        if (used < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        if (used == 0) break;
        int rc = PyList_Append(events, event);
        Py_DECREF(event);
        if (rc < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        pos += used;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
}

/* ---------------------------------------------------------------- encoding */

typedef struct {
    unsigned char *data;
    Py_ssize_t len, cap;
} outbuf;

static int out_reserve(outbuf *o, Py_ssize_t extra) {
    if (o->len + extra <= o->cap) return 0;
    Py_ssize_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + extra) cap *= 2;
    unsigned char *d = PyMem_Realloc(o->data, cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    o->data = d;
    o->cap = cap;
    return 0;
}

static inline unsigned char *put_varint(unsigned char *p, uint32_t v) {
    if (v < 64) {
        *p++ = (unsigned char)v;
    } else if (v < 0x4000) {
        v |= 0x4000;
        *p++ = (unsigned char)(v >> 8);
        *p++ = (unsigned char)v;
    } else if (v < 0x400000) {
        v |= 0x800000;
        *p++ = (unsigned char)(v >> 16);
        *p++ = (unsigned char)(v >> 8);
        *p++ = (unsigned char)v;
    } else {
        v |= 0xC0000000u;
        *p++ = (unsigned char)(v >> 24);
        *p++ = (unsigned char)(v >> 16);
        *p++ = (unsigned char)(v >> 8);
        *p++ = (unsigned char)v;
    }
    return p;
}

static inline Py_ssize_t varint_size(Py_ssize_t v) {
    return v < 64 ? 1 : v < 0x4000 ? 2 : v < 0x400000 ? 3 : 4;
}

/* A string ready to write: UTF-8 bytes borrowed from the str object. */
typedef struct {
    const char *s;
    Py_ssize_t n;
} strref;

/* 1 ok, 0 not handled here (fall back), -1 error. */
static int get_string(PyObject *obj, strref *out) {
    if (!PyUnicode_CheckExact(obj)) return 0;
    out->s = PyUnicode_AsUTF8AndSize(obj, &out->n);
    if (out->s == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (out->n && memchr(out->s, 0, out->n) != NULL) return 0;
    return 1;
}

#define MAX_TAGS 64

/* Encode one event onto o. Returns 1 done, 0 fall back, -1 error. */
static int encode_one(PyObject *ev, outbuf *o) {
    if (!PyTuple_Check(ev) || PyTuple_GET_SIZE(ev) != 10) return 0;
    PyObject *test_id = PyTuple_GET_ITEM(ev, 0);
    PyObject *status = PyTuple_GET_ITEM(ev, 1);
    PyObject *tags = PyTuple_GET_ITEM(ev, 2);
    PyObject *runnable = PyTuple_GET_ITEM(ev, 3);
    PyObject *file_name = PyTuple_GET_ITEM(ev, 4);
    PyObject *file_bytes = PyTuple_GET_ITEM(ev, 5);
    PyObject *eof = PyTuple_GET_ITEM(ev, 6);
    PyObject *mime = PyTuple_GET_ITEM(ev, 7);
    PyObject *route = PyTuple_GET_ITEM(ev, 8);
    PyObject *timestamp = PyTuple_GET_ITEM(ev, 9);

    long st = PyLong_AsLong(status);
    if (st == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (st < 0 || st > 7) return 0;
    unsigned int flags = 0x2000 | (unsigned int)st;
    Py_ssize_t body = 0;
    unsigned long long seconds = 0, nanos = 0;
    if (timestamp != Py_None) {
        if (!PyLong_CheckExact(timestamp)) return 0;
        int overflow = 0;
        long long ts = PyLong_AsLongLongAndOverflow(timestamp, &overflow);
        if (overflow || ts < 0) {
            PyErr_Clear();
            return 0;
        }
        seconds = (unsigned long long)ts / 1000000000ULL;
        nanos = (unsigned long long)ts % 1000000000ULL;
        if (seconds > 0xFFFFFFFFULL) return 0;
        flags |= FLAG_TIMESTAMP;
        body += 4 + varint_size((Py_ssize_t)nanos);
    }
    strref sid = {0}, smime = {0}, sname = {0}, sroute = {0};
    strref stags[MAX_TAGS];
    Py_ssize_t ntags = 0;
    int r;
    if (test_id != Py_None) {
        if ((r = get_string(test_id, &sid)) != 1) return r;
        flags |= FLAG_TEST_ID;
        body += varint_size(sid.n) + sid.n;
    }
    /* Only exact frozensets of exact strs, and real bools: anything else could
     * run Python code (a custom __iter__ or __bool__) while borrowed UTF-8
     * pointers are held, so it goes to the Python encoder. */
    if (!PyFrozenSet_CheckExact(tags)) return 0;
    if (runnable != Py_True && runnable != Py_False) return 0;
    if (eof != Py_True && eof != Py_False) return 0;
    ntags = PySet_GET_SIZE(tags);
    if (ntags > MAX_TAGS) return 0;
    if (ntags) {
        Py_ssize_t i = 0;
        PyObject *key, *tag_iter = PyObject_GetIter(tags);
        if (tag_iter == NULL) return -1;
        flags |= FLAG_TAGS;
        body += varint_size(ntags);
        /* The set keeps each tag alive, so the borrowed UTF-8 pointers stay valid. */
        while (i < ntags && (key = PyIter_Next(tag_iter)) != NULL) {
            r = get_string(key, &stags[i]);
            Py_DECREF(key);
            if (r != 1) {
                Py_DECREF(tag_iter);
                return r;
            }
            body += varint_size(stags[i].n) + stags[i].n;
            i++;
        }
        Py_DECREF(tag_iter);
        if (PyErr_Occurred()) return -1;
        if (i != ntags) return 0;
    }
    if (runnable == Py_True) flags |= FLAG_RUNNABLE;
    if (mime != Py_None) {
        if ((r = get_string(mime, &smime)) != 1) return r;
        if (smime.n) {
            flags |= FLAG_MIME_TYPE;
            body += varint_size(smime.n) + smime.n;
        }
    }
    Py_buffer content = {0};
    int have_content = 0;
    if (file_name != Py_None) {
        if ((r = get_string(file_name, &sname)) != 1) return r;
        if (!PyBytes_CheckExact(file_bytes)) return 0;
        flags |= FLAG_FILE_CONTENT;
        content.buf = PyBytes_AS_STRING(file_bytes);
        content.len = PyBytes_GET_SIZE(file_bytes);
        have_content = 1;
        body += varint_size(sname.n) + sname.n + varint_size(content.len) + content.len;
    }
    if (eof == Py_True) flags |= FLAG_EOF;
    if (route != Py_None) {
        if ((r = get_string(route, &sroute)) != 1) return r;
        flags |= FLAG_ROUTE_CODE;
        body += varint_size(sroute.n) + sroute.n;
    }
    Py_ssize_t base = body + 7;
    Py_ssize_t total;
    int lensize;
    if (base <= 62) {
        lensize = 1;
    } else if (base <= 16381) {
        lensize = 2;
    } else if (base <= 4194300) {
        lensize = 3;
    } else {
        return 0; /* needs chunking or is too large: Python decides */
    }
    total = base + lensize;
    if (out_reserve(o, total) < 0) return -1;
    unsigned char *start = o->data + o->len;
    unsigned char *p = start;
    *p++ = 0xB3;
    *p++ = (unsigned char)(flags >> 8);
    *p++ = (unsigned char)flags;
    p = put_varint(p, (uint32_t)total);
    if (flags & FLAG_TIMESTAMP) {
        *p++ = (unsigned char)(seconds >> 24);
        *p++ = (unsigned char)(seconds >> 16);
        *p++ = (unsigned char)(seconds >> 8);
        *p++ = (unsigned char)seconds;
        p = put_varint(p, (uint32_t)nanos);
    }
#define PUT_STR(ref)                                   \
    do {                                               \
        p = put_varint(p, (uint32_t)(ref).n);          \
        memcpy(p, (ref).s, (size_t)(ref).n);           \
        p += (ref).n;                                  \
    } while (0)
    if (flags & FLAG_TEST_ID) PUT_STR(sid);
    if (flags & FLAG_TAGS) {
        p = put_varint(p, (uint32_t)ntags);
        for (Py_ssize_t i = 0; i < ntags; i++) PUT_STR(stags[i]);
    }
    if (flags & FLAG_MIME_TYPE) PUT_STR(smime);
    if (have_content) {
        PUT_STR(sname);
        p = put_varint(p, (uint32_t)content.len);
        if (content.len) memcpy(p, content.buf, (size_t)content.len);
        p += content.len;
    }
    if (flags & FLAG_ROUTE_CODE) PUT_STR(sroute);
#undef PUT_STR
    uint32_t crc = crc32_of(start, p - start);
    *p++ = (unsigned char)(crc >> 24);
    *p++ = (unsigned char)(crc >> 16);
    *p++ = (unsigned char)(crc >> 8);
    *p++ = (unsigned char)crc;
    if (p - start != total) {
        PyErr_SetString(PyExc_SystemError, "proctor encoder length mismatch");
        return -1;
    }
    o->len += total;
    return 1;
}

static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *iterable, *fallback;
    if (!PyArg_ParseTuple(args, "OO", &iterable, &fallback)) return NULL;
    PyObject *it = PyObject_GetIter(iterable);
    if (it == NULL) return NULL;
    outbuf o = {NULL, 0, 0};
    PyObject *ev;
    while ((ev = PyIter_Next(it)) != NULL) {
        int r = encode_one(ev, &o);
        if (r == 0) {
            PyObject *b = PyObject_CallOneArg(fallback, ev);
            if (b == NULL) goto error;
            if (!PyBytes_Check(b)) {
                Py_DECREF(b);
                PyErr_SetString(PyExc_TypeError, "fallback must return bytes");
                goto error;
            }
            Py_ssize_t n = PyBytes_GET_SIZE(b);
            if (out_reserve(&o, n) < 0) {
                Py_DECREF(b);
                goto error;
            }
            memcpy(o.data + o.len, PyBytes_AS_STRING(b), (size_t)n);
            o.len += n;
            Py_DECREF(b);
        } else if (r < 0) {
            goto error;
        }
        Py_DECREF(ev);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) {
        PyMem_Free(o.data);
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)o.data, o.len);
    PyMem_Free(o.data);
    return result;
error:
    Py_DECREF(ev);
    Py_DECREF(it);
    PyMem_Free(o.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Register the Event type and the tuple of Status members."},
    {"scan", scan, METH_VARARGS, "Decode consecutive valid packets from buf[pos:] into a list; return the stop offset."},
    {"encode", encode, METH_VARARGS, "Encode an iterable of events, calling fallback(event) for any not handled here."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", "C fast paths for proctor.wire.v2.", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    crc_init();
    empty_frozenset = PyFrozenSet_New(NULL);
    if (empty_frozenset == NULL) return NULL;
    empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    if (empty_bytes == NULL) return NULL;
    return PyModule_Create(&module);
}

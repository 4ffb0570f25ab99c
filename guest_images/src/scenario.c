/*
 * scenario.c - run a small text script, read from the fw_cfg file
 * "opt/scenario", one command per line, printing one line per command.
 * This lets a user reproduce what a guest writes to (and reads from)
 * fw_cfg without a cross-compiler:
 *
 *   qemu-system-x86_64 ... -fw_cfg name=opt/scenario,file=script.txt \
 *       -kernel guest_images/x86_64/scenario.elf
 *
 * The script format is documented in scenarios/README.md (repository
 * root) and in guest_images/README.md.  In short: `#` starts a comment
 * (except inside the text of `print` and `note`), blank lines are
 * ignored, numbers are decimal or 0x-hex, byte strings are hex digits
 * without spaces.
 *
 * Memory accesses made for the script (poke, peek, note, buffer fills)
 * are volatile byte accesses: clang would otherwise turn the loops into
 * memset/memcpy calls or SIMD code, and SSE is not enabled on x86_64.
 */
#include "guest.h"
#include "fw_cfg.h"

#define SCRIPT_MAX      65536           /* bytes of opt/scenario read */
#define DMA_BUF_SIZE    65536           /* largest N for dma commands */
#define PRINT_MAX       256             /* bytes printed before "..." */
#define FILL            0xaa

static char script[SCRIPT_MAX + 1];     /* + the terminating NUL */
static uint8_t dma_buf[DMA_BUF_SIZE] __attribute__((aligned(4096)));
static struct fw_cfg_dma_access desc __attribute__((aligned(16)));
static struct fw_cfg_file file;

static uint32_t line_number;
static int have_last_key;               /* `$` is set */
static uint16_t last_key;

/* ---- output ---- */

static void put_byte_hex(uint8_t value)
{
    static const char hex[] = "0123456789abcdef";

    console_putc(hex[value >> 4]);
    console_putc(hex[value & 0xf]);
}

/* Two hex digits per byte, at most PRINT_MAX bytes, then "...". */
static void put_bytes(const volatile uint8_t *bytes, uint32_t count)
{
    uint32_t shown = count < PRINT_MAX ? count : PRINT_MAX;

    for (uint32_t i = 0; i < shown; i++)
        put_byte_hex(bytes[i]);
    if (count > shown)
        console_puts("...");
}

static void put_key(int is_none, uint16_t key)
{
    if (is_none)
        console_putc('-');
    else
        console_put_hex(key, 4);
}

static void error(const char *message)
{
    console_puts("error: line ");
    console_put_dec(line_number);
    console_puts(": ");
    console_puts(message);
    console_putc('\n');
}

/* ---- memory (volatile byte accesses) ---- */

static volatile uint8_t *phys(uint64_t address)
{
    return (volatile uint8_t *)(uintptr_t)address;
}

static void fill(volatile uint8_t *p, uint32_t count, uint8_t value)
{
    for (uint32_t i = 0; i < count; i++)
        p[i] = value;
}

static void put_le(volatile uint8_t *p, uint64_t value, int size)
{
    for (int i = 0; i < size; i++)
        p[i] = (uint8_t)(value >> (8 * i));
}

/* ---- tokens and numbers ---- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char *skip_blanks(char *p)
{
    while (is_blank(*p))
        p++;
    return p;
}

/* Next blank-separated word of *p, NUL-terminated in place; NULL when
 * the line has no more words. */
static char *next_word(char **p)
{
    char *start = skip_blanks(*p);
    char *end = start;

    if (*start == 0)
        return 0;
    while (*end && !is_blank(*end))
        end++;
    if (*end)
        *end++ = 0;
    *p = end;
    return start;
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decimal or 0x-hex; 1 when the whole word is a number that fits. */
static int parse_number(const char *word, uint64_t *out)
{
    uint64_t value = 0;

    if (word == 0 || *word == 0)
        return 0;
    if (word[0] == '0' && (word[1] == 'x' || word[1] == 'X')) {
        word += 2;
        if (*word == 0)
            return 0;
        for (; *word; word++) {
            int d = hex_digit(*word);

            if (d < 0 || (value >> 60) != 0)
                return 0;
            value = value << 4 | (uint64_t)d;
        }
    } else {
        for (; *word; word++) {
            uint64_t d = (uint64_t)(*word - '0');

            if (*word < '0' || *word > '9' || value > (~(uint64_t)0 - d) / 10)
                return 0;
            value = value * 10 + d;
        }
    }
    *out = value;
    return 1;
}

static int parse_u32(const char *word, uint32_t *out)
{
    uint64_t value;

    if (!parse_number(word, &value) || value > 0xffffffffu)
        return 0;
    *out = (uint32_t)value;
    return 1;
}

/* A key: a number up to 0xffff, `$` (the last `find`), or, if allowed,
 * `-` (no key: *none = 1).  Prints its own error and returns 0 when the
 * word is not one. */
static int parse_key(const char *word, int allow_none, int *none, uint16_t *key)
{
    uint64_t value;

    *none = 0;
    *key = 0;
    if (word && allow_none && streq(word, "-")) {
        *none = 1;
        return 1;
    }
    if (word && streq(word, "$")) {
        if (!have_last_key) {
            error("$ is not set (no successful find yet)");
            return 0;
        }
        *key = last_key;
        return 1;
    }
    if (!parse_number(word, &value) || value > 0xffff) {
        error("bad key");
        return 0;
    }
    *key = (uint16_t)value;
    return 1;
}

/* Hex byte string: its length in bytes, or -1 if it is not one (empty,
 * odd length, non-hex digit, longer than `max`). */
static int32_t bytes_length(const char *word, uint32_t max)
{
    uint32_t n = 0;

    if (word == 0 || *word == 0)
        return -1;
    while (word[n]) {
        if (hex_digit(word[n]) < 0)
            return -1;
        n++;
    }
    if (n % 2 || n / 2 > max)
        return -1;
    return (int32_t)(n / 2);
}

static void store_bytes(volatile uint8_t *to, const char *word, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        to[i] = (uint8_t)(hex_digit(word[2 * i]) << 4 | hex_digit(word[2 * i + 1]));
}

/* ---- commands ---- */

static void cmd_select(char *args)
{
    int none;
    uint16_t key;

    if (!parse_key(next_word(&args), 0, &none, &key))
        return;
    fw_cfg_select(key);
    console_puts("select ");
    console_put_hex(key, 4);
    console_putc('\n');
}

static void cmd_find(char *args)
{
    char *name = next_word(&args);
    int found;

    if (name == 0) {
        error("find needs a name");
        return;
    }
    found = fw_cfg_find_file(name, &file);
    console_puts("find ");
    console_puts(name);
    if (found) {
        last_key = fw_cfg_be16(file.select);
        have_last_key = 1;
        fw_cfg_select(last_key);
        console_puts(": key=");
        console_put_hex(last_key, 4);
        console_puts(" size=");
        console_put_dec(fw_cfg_be32(file.size));
    } else {
        have_last_key = 0;
        console_puts(": missing");
    }
    console_putc('\n');
}

static void cmd_read(char *args)
{
    uint32_t count;
    uint8_t value;

    if (!parse_u32(next_word(&args), &count)) {
        error("bad arguments");
        return;
    }
    console_puts("read ");
    console_put_dec(count);
    console_puts(": ");
    for (uint32_t i = 0; i < count; i++) {
        value = fw_cfg_arch_read8();
        if (i < PRINT_MAX)
            put_byte_hex(value);
    }
    if (count > PRINT_MAX)
        console_puts("...");
    console_putc('\n');
}

static void cmd_write(char *args)
{
    uint64_t value;

    if (!parse_number(next_word(&args), &value) || value > 0xff) {
        error("bad arguments");
        return;
    }
    fw_cfg_arch_write8((uint8_t)value);
    console_puts("write ");
    console_put_hex(value, 2);
    console_putc('\n');
}

static uint32_t dma_run(uint32_t control, uint32_t length, uint64_t address)
{
    return fw_cfg_dma(&desc, control, length, address);
}

static void put_control(uint32_t control)
{
    console_puts(": control=");
    console_put_hex(control, 8);
}

/* dma read|skip KEY N, dma write KEY BYTES, dma control KEY WORD N,
 * dma raw ADDR */
static void cmd_dma(char *args)
{
    char *op = next_word(&args);
    char *key_word;
    int none;
    uint16_t key;
    uint32_t count, control, word;
    uint64_t address;

    if (op == 0) {
        error("unknown command");
        return;
    }
    if (streq(op, "raw")) {
        if (!parse_number(next_word(&args), &address)) {
            error("bad arguments");
            return;
        }
        fw_cfg_barrier();
        fw_cfg_arch_dma_start(address);
        fw_cfg_barrier();
        console_puts("dma raw ");
        console_put_hex(address, 16);
        console_putc('\n');
        return;
    }
    if (!streq(op, "read") && !streq(op, "skip") && !streq(op, "write") &&
        !streq(op, "control")) {
        error("unknown command");
        return;
    }
    key_word = next_word(&args);
    if (key_word == 0) {
        error("bad arguments");
        return;
    }
    if (!parse_key(key_word, 1, &none, &key))
        return;

    if (streq(op, "write")) {
        char *bytes = next_word(&args);
        int32_t n = bytes_length(bytes, DMA_BUF_SIZE);

        if (n < 0) {
            error("bad arguments");
            return;
        }
        count = (uint32_t)n;
        store_bytes(dma_buf, bytes, count);
        control = none ? FW_CFG_DMA_CTL_WRITE
                       : FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_WRITE);
        control = dma_run(control, count, (uintptr_t)dma_buf);
        console_puts("dma write ");
        put_key(none, key);
        console_putc(' ');
        console_put_dec(count);
        put_control(control);
        console_putc('\n');
        return;
    }

    word = 0;
    if (streq(op, "control") && !parse_u32(next_word(&args), &word)) {
        error("bad arguments");
        return;
    }
    if (!parse_u32(next_word(&args), &count) || count > DMA_BUF_SIZE) {
        error("bad arguments");
        return;
    }
    fill(dma_buf, count, FILL);

    if (streq(op, "control")) {
        control = none ? word : ((uint32_t)key << 16) | (word & 0xffff);
        control = dma_run(control, count, (uintptr_t)dma_buf);
        console_puts("dma control ");
        put_key(none, key);
        console_putc(' ');
        console_put_hex(word, 8);
        console_putc(' ');
        console_put_dec(count);
        put_control(control);
        console_puts(" data=");
        put_bytes(dma_buf, count);
        console_putc('\n');
        return;
    }

    if (streq(op, "read")) {
        control = none ? FW_CFG_DMA_CTL_READ
                       : FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_READ);
    } else {
        control = none ? FW_CFG_DMA_CTL_SKIP
                       : FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_SKIP);
    }
    control = dma_run(control, count, (uintptr_t)dma_buf);
    console_puts("dma ");
    console_puts(op);
    console_putc(' ');
    put_key(none, key);
    console_putc(' ');
    console_put_dec(count);
    put_control(control);
    if (streq(op, "read")) {
        console_puts(" data=");
        put_bytes(dma_buf, count);
    }
    console_putc('\n');
}

static void cmd_poke(char *args)
{
    uint64_t address;
    char *bytes;
    int32_t n;

    if (!parse_number(next_word(&args), &address)) {
        error("bad arguments");
        return;
    }
    bytes = next_word(&args);
    n = bytes_length(bytes, SCRIPT_MAX);
    if (n < 0) {
        error("bad arguments");
        return;
    }
    store_bytes(phys(address), bytes, (uint32_t)n);
    console_puts("poke ");
    console_put_hex(address, 16);
    console_putc(' ');
    console_put_dec((uint32_t)n);
    console_putc('\n');
}

static void cmd_peek(char *args)
{
    uint64_t address;
    uint32_t count;

    if (!parse_number(next_word(&args), &address) ||
        !parse_u32(next_word(&args), &count)) {
        error("bad arguments");
        return;
    }
    console_puts("peek ");
    console_put_hex(address, 16);
    console_putc(' ');
    console_put_dec(count);
    console_puts(": ");
    put_bytes(phys(address), count);
    console_putc('\n');
}

/* note ADDR NAME TEXT: Elf64_Nhdr {namesz, descsz, type 0}, the name
 * with its NUL padded to 4 bytes, the text (escapes decoded) padded to
 * 4 bytes, then an empty terminator note (12 zero bytes). */
static void cmd_note(char *args)
{
    uint64_t address;
    char *name;
    const char *text;
    volatile uint8_t *note;
    uint32_t namesz = 0, descsz = 0, desc_offset, size;

    if (!parse_number(next_word(&args), &address) ||
        (name = next_word(&args)) == 0) {
        error("bad arguments");
        return;
    }
    text = skip_blanks(args);
    note = phys(address);

    while (name[namesz]) {
        note[12 + namesz] = (uint8_t)name[namesz];
        namesz++;
    }
    namesz++;                                   /* the NUL */
    for (uint32_t i = namesz - 1; i < ((namesz + 3) & ~3u); i++)
        note[12 + i] = 0;
    desc_offset = 12 + ((namesz + 3) & ~3u);

    while (*text) {
        uint8_t c = (uint8_t)*text++;

        if (c == '\\' && *text) {
            char e = *text++;

            if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == '0')
                c = 0;
            else if (e == 'x' && hex_digit(text[0]) >= 0 && hex_digit(text[1]) >= 0) {
                c = (uint8_t)(hex_digit(text[0]) << 4 | hex_digit(text[1]));
                text += 2;
            } else
                c = (uint8_t)e;                 /* \\ and anything else */
        }
        note[desc_offset + descsz++] = c;
    }
    size = desc_offset + ((descsz + 3) & ~3u);
    fill(note + desc_offset + descsz, size - desc_offset - descsz, 0);
    fill(note + size, 12, 0);                   /* terminator note */
    put_le(note + 0, namesz, 4);
    put_le(note + 4, descsz, 4);
    put_le(note + 8, 0, 4);

    console_puts("note ");
    console_put_hex(address, 16);
    console_puts(" size=");
    console_put_dec(size);
    console_putc('\n');
}

/* vmcoreinfo ADDR SIZE FORMAT: what Linux writes to etc/vmcoreinfo. */
static void cmd_vmcoreinfo(char *args)
{
    uint64_t address, format;
    uint32_t size, control;
    uint16_t key;

    if (!parse_number(next_word(&args), &address) ||
        !parse_u32(next_word(&args), &size) ||
        !parse_number(next_word(&args), &format) || format > 0xffff) {
        error("bad arguments");
        return;
    }
    if (!fw_cfg_find_file("etc/vmcoreinfo", &file)) {
        console_puts("vmcoreinfo: etc/vmcoreinfo missing\n");
        return;
    }
    key = fw_cfg_be16(file.select);
    put_le(dma_buf + 0, 0, 2);                  /* host_format */
    put_le(dma_buf + 2, format, 2);             /* guest_format */
    put_le(dma_buf + 4, size, 4);
    put_le(dma_buf + 8, address, 8);
    control = dma_run(FW_CFG_DMA_SELECT(key, FW_CFG_DMA_CTL_WRITE), 16,
                      (uintptr_t)dma_buf);
    console_puts("vmcoreinfo ");
    console_put_hex(address, 16);
    console_putc(' ');
    console_put_dec(size);
    console_putc(' ');
    console_put_dec(format);
    put_control(control);
    console_putc('\n');
}

/* Runs one line (NUL-terminated, no newline).  Returns 0 to go on,
 * 1 for `exit`. */
static int run_line(char *line)
{
    char *p = line;
    char *command = next_word(&p);

    if (command == 0 || command[0] == '#')
        return 0;
    if (streq(command, "print")) {
        console_puts(skip_blanks(p));
        console_putc('\n');
        return 0;
    }
    if (streq(command, "note")) {
        cmd_note(p);
        return 0;
    }
    /* everything else: `#` starts a comment */
    for (char *c = p; *c; c++) {
        if (*c == '#') {
            *c = 0;
            break;
        }
    }
    if (streq(command, "select"))
        cmd_select(p);
    else if (streq(command, "find"))
        cmd_find(p);
    else if (streq(command, "read"))
        cmd_read(p);
    else if (streq(command, "write"))
        cmd_write(p);
    else if (streq(command, "dma"))
        cmd_dma(p);
    else if (streq(command, "poke"))
        cmd_poke(p);
    else if (streq(command, "peek"))
        cmd_peek(p);
    else if (streq(command, "vmcoreinfo"))
        cmd_vmcoreinfo(p);
    else if (streq(command, "halt"))
        cpu_halt_forever();
    else if (streq(command, "exit"))
        return 1;
    else
        error("unknown command");
    return 0;
}

/* Reads opt/scenario into `script` (DMA when the device has it);
 * returns its length, or -1 when it is missing. */
static int32_t load_script(void)
{
    uint32_t size, id;

    if (!fw_cfg_find_file("opt/scenario", &file))
        return -1;
    size = fw_cfg_be32(file.size);
    if (size > SCRIPT_MAX) {
        console_puts("scenario: opt/scenario has ");
        console_put_dec(size);
        console_puts(" bytes; only the first 65536 are run\n");
        size = SCRIPT_MAX;
    }
    fw_cfg_read_key(FW_CFG_ID, &id, 4);
    if (id & FW_CFG_VERSION_DMA)
        dma_run(FW_CFG_DMA_SELECT(fw_cfg_be16(file.select), FW_CFG_DMA_CTL_READ),
                size, (uintptr_t)script);
    else
        fw_cfg_read_key(fw_cfg_be16(file.select), script, size);
    ((volatile char *)script)[size] = 0;
    return (int32_t)size;
}

int main(void)
{
    int32_t length = load_script();
    char *p = script;

    if (length < 0) {
        console_puts("scenario: no opt/scenario\n");
        return 0;
    }
    while (p < script + length) {
        char *line = p;
        char *end = p;

        while (end < script + length && *end != '\n')
            end++;
        p = end + 1;
        *end = 0;
        if (end > line && end[-1] == '\r')
            end[-1] = 0;
        line_number++;
        /* a NUL byte inside a line ends it early; that is fine */
        if (run_line(line))
            return 0;
    }
    console_puts("scenario: end\n");
    return 0;
}

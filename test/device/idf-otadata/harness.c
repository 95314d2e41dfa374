/*
 * Host program around ESP-IDF v6.0's own otadata and boot-selection code (test/device/idf-otadata-diff.test.ts).
 *
 * idf_extracted.c is written by the test: functions copied verbatim, by name, out of ../shared/esp-idf
 * (esp_ota_ops.c, bootloader_utility.c, bootloader_common_loader.c, esp_efuse_fields.c). They are
 * extracted rather than the whole files compiled because those files also hold the image loader, the
 * MMU/cache setup and flash encryption, which need the chip. Everything they call that is hardware or
 * outside the boot decision is stubbed here:
 *  - partition and bootloader flash I/O go to an 8 KB otadata file (out/idf-otadata/otadata.bin),
 *    each erase and write printed, and a power cut at the n-th erase/write (it is printed, not done);
 *  - image validation (esp_image_verify, bootloader_load_image) answers from the case's slot table;
 *  - esp_app_desc_t reads (esp_partition_read, bootloader_common_get_partition_description) give the
 *    case's secure_version, or a wrong magic word for an erased slot;
 *  - the eFuse secure-version field is a 32-bit word (esp_efuse_read/write_field_blob);
 *  - esp_rom_crc32_le is the ROM's CRC-32 (little-endian, ~crc in and out), written here.
 *
 * One case per stdin line:
 *   op nslots factory target anti efuse slots hex64 cut
 *     op      boot | set | valid | invalid | state | possible
 *     slots   per app (factory first when present, then ota_0..): v<secver> valid image,
 *             c<secver> desc readable but image invalid, e erased
 *     hex64   the first 32 bytes of otadata sector 0 then of sector 1 (the rest of both is 0xFF)
 *     cut     n > 0: power fails at the n-th erase/write (not done); 0: never
 * One line out: result efuse ops... | hex64-after
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>

#include "esp_err.h"
#include "esp_partition.h"
#include "esp_flash_partitions.h"
#include "esp_app_desc.h"
#include "esp_image_format.h"
#include "esp_ota_ops.h"
#include "bootloader_config.h"
#include "esp_efuse.h"

/* esp_log.h, esp_fault.h parts the extracted code uses: logging is left out. */
#undef ESP_LOGE
#undef ESP_LOGW
#undef ESP_LOGI
#undef ESP_LOGD
#undef ESP_LOGV
#undef ESP_LOG_ATTR_STR
#define ESP_LOGE(...) ((void)0)
#define ESP_LOGW(...) ((void)0)
#define ESP_LOGI(...) ((void)0)
#define ESP_LOGD(...) ((void)0)
#define ESP_LOGV(...) ((void)0)
#define ESP_LOG_ATTR_STR(s) (s)
#define ESP_FAULT_ASSERT(c) do { if (!(c)) abort(); } while (0)
#define OTA_SLOT(i) (i & 0x0F)                         /* esp_ota_ops.c */
#define FLASH_SECTOR_SIZE 0x1000                       /* bootloader_flash_priv.h */
#define ESP_EFUSE_SECURE_VERSION_NUM_BLOCK EFUSE_BLK3  /* efuse/esp32/private_include/esp_efuse_utility.h */
#ifdef CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD  /* esp_efuse_fields.c */
#define APP_SEC_VER_SIZE_EFUSE_FIELD CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD
#else
#define APP_SEC_VER_SIZE_EFUSE_FIELD 4
#endif

/* ---- the case ---- */
#define OTADATA_ADDR 0xd000u
#define OTADATA_SIZE 0x2000u
#define APP_ADDR(i) (0x10000u + (uint32_t)(i) * 0x100000u)
static FILE *ota_file;
static int n_slots, has_factory;
static char kinds[17];       /* 'v', 'c', 'e': index 0 factory, 1.. ota_0.. */
static uint32_t secvers[17];
static uint32_t efuse_word;  /* the secure_version field: a thermometer code */
static int cut_at, op_count;
static jmp_buf cut_jmp, boot_jmp;
static char out_ops[8192];
static esp_partition_t parts[18];
static esp_partition_t *otadata_part;

static void log_op(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void log_op(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = strlen(out_ops);
    vsnprintf(out_ops + n, sizeof(out_ops) - n, fmt, ap);
    va_end(ap);
}

static void file_read(uint32_t off, void *dst, size_t len)
{
    fseek(ota_file, (long)off, SEEK_SET);
    if (fread(dst, 1, len, ota_file) != len) abort();
}

static void file_write(uint32_t off, const void *src, size_t len)
{
    fseek(ota_file, (long)off, SEEK_SET);
    if (fwrite(src, 1, len, ota_file) != len) abort();
    fflush(ota_file);
}

/* One counted flash operation on otadata (offsets relative to the partition). */
static void flash_erase(uint32_t off, uint32_t len)
{
    for (uint32_t s = off; s < off + len; s += FLASH_SECTOR_SIZE) {
        log_op(" E%u", s / FLASH_SECTOR_SIZE);
        if (++op_count == cut_at) longjmp(cut_jmp, 1);
        uint8_t ff[FLASH_SECTOR_SIZE];
        memset(ff, 0xff, sizeof(ff));
        file_write(s, ff, sizeof(ff));
    }
}

static void flash_write(uint32_t off, const void *src, size_t len)
{
    log_op(" W%u:", off);
    for (size_t i = 0; i < len; i++) log_op("%02x", ((const uint8_t *)src)[i]);
    if (++op_count == cut_at) longjmp(cut_jmp, 1);
    uint8_t cur[64];
    if (len > sizeof(cur)) abort();
    file_read(off, cur, len);
    for (size_t i = 0; i < len; i++) cur[i] &= ((const uint8_t *)src)[i]; /* NOR: bits only clear */
    file_write(off, cur, len);
}

static int app_index_of(uint32_t addr)
{
    for (int i = 0; i < 17; i++) if (APP_ADDR(i) == addr) return i;
    return -1;
}

/* ---- stubs: esp_partition ---- */
const esp_partition_t *esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype, const char *label)
{
    (void)label;
    if (type == ESP_PARTITION_TYPE_DATA && subtype == ESP_PARTITION_SUBTYPE_DATA_OTA) return otadata_part;
    if (type != ESP_PARTITION_TYPE_APP) return NULL;
    if (subtype == ESP_PARTITION_SUBTYPE_APP_FACTORY) return has_factory ? &parts[0] : NULL;
    int slot = (int)subtype - ESP_PARTITION_SUBTYPE_APP_OTA_MIN;
    if (subtype >= ESP_PARTITION_SUBTYPE_APP_OTA_MIN && slot < n_slots) return &parts[1 + slot];
    return NULL;
}

static uint8_t mapped[OTADATA_SIZE];
esp_err_t esp_partition_mmap(const esp_partition_t *p, size_t offset, size_t size, esp_partition_mmap_memory_t memory, const void **out_ptr, esp_partition_mmap_handle_t *out_handle)
{
    (void)memory;
    if (p != otadata_part || offset + size > OTADATA_SIZE) abort();
    file_read((uint32_t)offset, mapped, size);
    *out_ptr = mapped;
    *out_handle = 1;
    return ESP_OK;
}
void esp_partition_munmap(esp_partition_mmap_handle_t handle) { (void)handle; }

esp_err_t esp_partition_erase_range(const esp_partition_t *p, size_t offset, size_t size)
{
    if (p != otadata_part) { log_op(" X"); return ESP_OK; } /* an app slot erased (anti-rollback refusal) */
    flash_erase((uint32_t)offset, (uint32_t)size);
    return ESP_OK;
}

esp_err_t esp_partition_write(const esp_partition_t *p, size_t dst_offset, const void *src, size_t size)
{
    if (p != otadata_part) abort();
    flash_write((uint32_t)dst_offset, src, size);
    return ESP_OK;
}

static void fill_desc(int idx, esp_app_desc_t *d)
{
    memset(d, 0, sizeof(*d));
    d->magic_word = kinds[idx] == 'e' ? 0xffffffffu : ESP_APP_DESC_MAGIC_WORD;
    d->secure_version = kinds[idx] == 'e' ? 0xffffffffu : secvers[idx];
}

/* Only esp_ota_get_partition_description reads app partitions: the esp_app_desc_t after the headers. */
esp_err_t esp_partition_read(const esp_partition_t *p, size_t src_offset, void *dst, size_t size)
{
    int idx = app_index_of(p->address);
    if (idx < 0 || src_offset != sizeof(esp_image_header_t) + sizeof(esp_image_segment_header_t) || size != sizeof(esp_app_desc_t)) abort();
    fill_desc(idx, dst);
    return ESP_OK;
}

/* esp_ota_get_running_partition: not used by the functions compared (they never look at it). */
const esp_partition_t *esp_ota_get_running_partition(void) { abort(); }
void esp_restart(void) { abort(); }

/* ---- stubs: image validation ---- */
esp_err_t esp_image_verify(esp_image_load_mode_t mode, const esp_partition_pos_t *part, esp_image_metadata_t *data)
{
    (void)mode; (void)data;
    int idx = app_index_of(part->offset);
    return idx >= 0 && kinds[idx] == 'v' ? ESP_OK : ESP_ERR_IMAGE_INVALID;
}

esp_err_t bootloader_load_image(const esp_partition_pos_t *part, esp_image_metadata_t *data)
{
    int idx = app_index_of(part->offset);
    data->start_addr = part->offset;
    return idx >= 0 && kinds[idx] == 'v' ? ESP_OK : ESP_ERR_IMAGE_INVALID;
}

esp_err_t bootloader_common_get_partition_description(const esp_partition_pos_t *partition, esp_app_desc_t *app_desc)
{
    int idx = app_index_of(partition->offset);
    if (idx < 0) return ESP_ERR_INVALID_ARG;
    fill_desc(idx, app_desc);
    return app_desc->magic_word == ESP_APP_DESC_MAGIC_WORD ? ESP_OK : ESP_ERR_NOT_FOUND;
}

static void load_image(const esp_image_metadata_t *image_data)
{
    longjmp(boot_jmp, 1000 + app_index_of(image_data->start_addr));
}
void bootloader_reset(void) { longjmp(boot_jmp, 1); }

/* ---- stubs: bootloader flash ---- */
const void *bootloader_mmap(uint32_t src_addr, uint32_t size)
{
    if (src_addr != OTADATA_ADDR || size > OTADATA_SIZE) abort();
    file_read(0, mapped, size);
    return mapped;
}
void bootloader_munmap(const void *mapping) { (void)mapping; }
esp_err_t bootloader_flash_erase_sector(size_t sector)
{
    flash_erase((uint32_t)(sector * FLASH_SECTOR_SIZE - OTADATA_ADDR), FLASH_SECTOR_SIZE);
    return ESP_OK;
}
esp_err_t bootloader_flash_write(size_t dest_addr, void *src, size_t size, bool write_encrypted)
{
    (void)write_encrypted;
    flash_write((uint32_t)(dest_addr - OTADATA_ADDR), src, size);
    return ESP_OK;
}
bool esp_flash_encryption_enabled(void) { return false; }

/* ---- stubs: ROM CRC, eFuse field ---- */
uint32_t esp_rom_crc32_le(uint32_t crc, uint8_t const *buf, uint32_t len)
{
    crc = ~crc;
    for (uint32_t i = 0; i < len; i++) {
        crc ^= buf[i];
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0xedb88320u : crc >> 1;
    }
    return ~crc;
}

const esp_efuse_desc_t *ESP_EFUSE_SECURE_VERSION[] = { NULL };
int esp_efuse_get_field_size(const esp_efuse_desc_t *field[]) { (void)field; return 32; }
esp_err_t esp_efuse_read_field_blob(const esp_efuse_desc_t *field[], void *dst, size_t dst_size_bits)
{
    (void)field; (void)dst_size_bits;
    memcpy(dst, &efuse_word, 4);
    return ESP_OK;
}
esp_err_t esp_efuse_write_field_blob(const esp_efuse_desc_t *field[], const void *src, size_t src_size_bits)
{
    (void)field; (void)src_size_bits;
    uint32_t bits;
    memcpy(&bits, src, 4);
    efuse_word |= bits;
    return ESP_OK;
}
esp_efuse_coding_scheme_t esp_efuse_get_coding_scheme(esp_efuse_block_t blk) { (void)blk; return EFUSE_CODING_SCHEME_NONE; }

/* ---- ESP-IDF v6.0 ---- */
static bool ota_has_initial_contents; /* bootloader_utility.c's file-scope flag */
#include "idf_extracted.c"

/* ---- driver ---- */
static int parse_hex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static void dump_state(char *out)
{
    uint8_t b[64];
    file_read(0, b, 32);
    file_read(FLASH_SECTOR_SIZE, b + 32, 32);
    for (int i = 0; i < 64; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s otadata.bin < cases\n", argv[0]); return 2; }
    ota_file = fopen(argv[1], "w+b");
    if (!ota_file) { perror(argv[1]); return 2; }
    static esp_partition_t ota = { .type = ESP_PARTITION_TYPE_DATA, .subtype = ESP_PARTITION_SUBTYPE_DATA_OTA, .address = OTADATA_ADDR, .size = OTADATA_SIZE, .erase_size = FLASH_SECTOR_SIZE };
    otadata_part = &ota;
    char line[4096];
    while (fgets(line, sizeof(line), stdin)) {
        char op[16], slots[64], hex[160];
        int target, anti;
        unsigned efuse;
        if (sscanf(line, "%15s %d %d %d %d %u %63s %159s %d", op, &n_slots, &has_factory, &target, &anti, &efuse, slots, hex, &cut_at) != 9) {
            fprintf(stderr, "bad line: %s", line);
            return 2;
        }
        /* the anti-rollback build is another program: anti must match it */
#ifdef CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK
        if (!anti) { fprintf(stderr, "anti-rollback build got anti=0\n"); return 2; }
#else
        if (anti) { fprintf(stderr, "plain build got anti=1\n"); return 2; }
#endif
        efuse_word = efuse >= 32 ? 0xffffffffu : (1u << efuse) - 1;
        memset(kinds, 0, sizeof(kinds));
        const char *s = slots;
        for (int i = has_factory ? 0 : 1; i <= n_slots; i++) {
            kinds[i] = *s++;
            secvers[i] = (uint32_t)strtoul(s, (char **)&s, 10);
            if (*s == ',') s++;
        }
        memset(parts, 0, sizeof(parts));
        for (int i = 0; i <= n_slots; i++) {
            parts[i].type = ESP_PARTITION_TYPE_APP;
            parts[i].subtype = i == 0 ? ESP_PARTITION_SUBTYPE_APP_FACTORY : ESP_PARTITION_SUBTYPE_APP_OTA_MIN + i - 1;
            parts[i].address = APP_ADDR(i);
            parts[i].size = 0x100000;
            parts[i].erase_size = FLASH_SECTOR_SIZE;
        }
        uint8_t init[OTADATA_SIZE];
        memset(init, 0xff, sizeof(init));
        if (parse_hex(hex, init, 32) || parse_hex(hex + 64, init + FLASH_SECTOR_SIZE, 32)) { fprintf(stderr, "bad hex\n"); return 2; }
        file_write(0, init, sizeof(init));
        out_ops[0] = 0;
        op_count = 0;
        char result[64] = "";
        if (setjmp(cut_jmp)) {
            strcpy(result, "cut");
        } else if (!strcmp(op, "boot")) {
            bootloader_state_t bs;
            memset(&bs, 0, sizeof(bs));
            bs.ota_info.offset = OTADATA_ADDR;
            bs.ota_info.size = OTADATA_SIZE;
            if (has_factory) { bs.factory.offset = APP_ADDR(0); bs.factory.size = 0x100000; }
            bs.app_count = (uint32_t)n_slots;
            for (int i = 0; i < n_slots; i++) { bs.ota[i].offset = APP_ADDR(i + 1); bs.ota[i].size = 0x100000; }
            int r = setjmp(boot_jmp);
            if (r == 0) {
                int index = bootloader_utility_get_selected_boot_partition(&bs);
                if (index == INVALID_INDEX) strcpy(result, "invalid");
                else {
                    bootloader_utility_load_boot_image(&bs, index);
                    strcpy(result, "returned");
                }
            } else if (r == 1) strcpy(result, "bricked");
            else sprintf(result, "boot:%d", r - 1000 - 1);
        } else if (!strcmp(op, "set")) {
            sprintf(result, "err:%d", esp_ota_set_boot_partition(&parts[1 + target]));
        } else if (!strcmp(op, "valid")) {
            sprintf(result, "err:%d", esp_ota_mark_app_valid_cancel_rollback());
        } else if (!strcmp(op, "invalid")) {
            sprintf(result, "err:%d", esp_ota_mark_app_invalid_rollback());
        } else if (!strcmp(op, "state")) {
            esp_ota_img_states_t st = 0;
            esp_err_t e = esp_ota_get_state_partition(&parts[1 + target], &st);
            if (e == ESP_OK) sprintf(result, "state:%u", (unsigned)st);
            else sprintf(result, "err:%d", e);
        } else if (!strcmp(op, "possible")) {
            sprintf(result, "possible:%d", esp_ota_check_rollback_is_possible() ? 1 : 0);
        } else {
            fprintf(stderr, "bad op %s\n", op);
            return 2;
        }
        char after[129];
        dump_state(after);
        printf("%s %u%s | %s\n", result, (unsigned)__builtin_popcount(efuse_word), out_ops, after);
    }
    return 0;
}

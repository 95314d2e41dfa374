#include <stddef.h>
#include <stdint.h>
uint32_t crc32(const unsigned char *p, size_t n);
uint32_t adler32(const unsigned char *p, size_t n);
void base64(const unsigned char *p, size_t n, char *out, size_t cap);
void stats(const unsigned char *p, size_t n);

#include <stdio.h>
#include "tool.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64(const unsigned char *p, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
  }
  out[o] = 0;
}

void stats(const unsigned char *p, size_t n) {
  size_t counts[256] = {0};
  for (size_t i = 0; i < n; i++) counts[p[i]]++;
  size_t best = 0;
  for (int b = 1; b < 256; b++) if (counts[b] > counts[best]) best = (size_t)b;
  printf("common 0x%02zx x %zu\n", best, counts[best]);
#ifdef STATS_V2
  size_t lines = 0, words = 0;
  int in = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') lines++;
    int space = p[i] == ' ' || p[i] == '\n' || p[i] == '\t';
    if (!space && !in) words++;
    in = !space;
  }
  printf("lines  %zu\nwords  %zu\n", lines, words);
#endif
}

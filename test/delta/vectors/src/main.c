/* A small real program for delta test vectors: checksums and encodes its input. */
#include <stdio.h>
#include <string.h>
#include "tool.h"

#ifndef VERSION
#define VERSION "1.0.0"
#endif

static unsigned char buf[65536];

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("vectortool %s\n", VERSION);
    return 0;
  }
  size_t n = fread(buf, 1, sizeof buf, stdin);
  char out[256];
  printf("bytes  %zu\n", n);
  printf("crc32  %08lx\n", (unsigned long)crc32(buf, n));
  printf("adler  %08lx\n", (unsigned long)adler32(buf, n));
  base64(buf, n < 96 ? n : 96, out, sizeof out);
  printf("base64 %s\n", out);
  stats(buf, n);
  return 0;
}

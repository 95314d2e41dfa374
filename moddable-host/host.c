/*
 * The C host of the Linux program (mcconfig -p x-cli-lin): the SDK has no main() for x-cli
 * targets, so this one creates the XS machine from the linked archive (mc.xs.c), runs the
 * default export of "moddable-host/main" and then the GLib main loop that Moddable's lin
 * timer, socket and promise jobs attach to. Plus the few natives Linux cannot borrow from
 * the SDK (moddable-host/native.js): argv, exit, a file-backed NOR flash, and mcGetResource
 * (ssl_cert.js looks CA indexes up as resources; x-cli builds have none, so every lookup is
 * an empty resource and only the CA the binding registers is trusted).
 */
#include "xsAll.h"
#include "xsmc.h"
#include "mc.xs.h"
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int gArgc;
static char **gArgv;
static int gFlash = -1;
static long gFlashSize = 0;
static const uint8_t gEmpty[1] = { 0 };

const void *mcGetResource(xsMachine *the, char *path, size_t *size)
{
	*size = 0;
	return gEmpty;
}

void fxAbort(xsMachine *the, int status)
{
	fprintf(stdout, "@panic xs abort %d\n", status);
	fflush(stdout);
	exit(70);
}

/* host.args(): the program's arguments after argv[0], as an array of strings. */
void xs_host_args(xsMachine *the)
{
	int i;
	xsmcVars(1);
	xsmcSetNewArray(xsResult, 0);
	for (i = 1; i < gArgc; i++) {
		xsmcSetString(xsVar(0), gArgv[i]);
		xsmcSetIndex(xsResult, i - 1, xsVar(0));
	}
}

/* host.exit(status): flush and end the process (a restart is the driver's next process). */
void xs_host_exit(xsMachine *the)
{
	int status = xsmcToInteger(xsArg(0));
	fflush(stdout);
	fflush(stderr);
	if (gFlash >= 0) fsync(gFlash);
	exit(status);
}

/* host.write(string): one line to stdout, unbuffered against the process end. */
void xs_host_write(xsMachine *the)
{
	fputs(xsmcToString(xsArg(0)), stdout);
	fflush(stdout);
}

/* host.flashOpen(path): open the raw flash image (xsota flash create); returns its size. */
void xs_host_flash_open(xsMachine *the)
{
	struct stat st;
	char *path = xsmcToString(xsArg(0));
	if (gFlash >= 0) close(gFlash);
	gFlash = open(path, O_RDWR);
	if (gFlash < 0 || fstat(gFlash, &st) < 0) xsUnknownError("cannot open flash image %s", path);
	gFlashSize = (long)st.st_size;
	xsmcSetInteger(xsResult, (xsIntegerValue)gFlashSize);
}

static void checkRange(xsMachine *the, long offset, long length)
{
	if (gFlash < 0) xsUnknownError("flash not open");
	if (offset < 0 || length < 0 || offset + length > gFlashSize) xsRangeError("flash 0x%lx+%ld out of bounds", offset, length);
}

/* host.flashRead(offset, target): fill the caller-owned buffer (view) from the image. */
void xs_host_flash_read(xsMachine *the)
{
	long offset = xsmcToInteger(xsArg(0));
	void *data;
	xsUnsignedValue length;
	xsmcGetBufferWritable(xsArg(1), &data, &length);
	checkRange(the, offset, (long)length);
	if (pread(gFlash, data, length, offset) != (ssize_t)length) xsUnknownError("flash read failed");
}

/* host.flashWrite(offset, data): NOR programming, bits only go from 1 to 0 (new = old AND data). */
void xs_host_flash_write(xsMachine *the)
{
	long offset = xsmcToInteger(xsArg(0));
	void *data;
	xsUnsignedValue length, i;
	uint8_t *merged;
	xsmcGetBufferReadable(xsArg(1), &data, &length);
	checkRange(the, offset, (long)length);
	merged = c_malloc(length ? length : 1);
	if (!merged) xsUnknownError("no memory");
	if (pread(gFlash, merged, length, offset) != (ssize_t)length) { c_free(merged); xsUnknownError("flash read failed"); }
	for (i = 0; i < length; i++) merged[i] &= ((uint8_t *)data)[i];
	if (pwrite(gFlash, merged, length, offset) != (ssize_t)length) { c_free(merged); xsUnknownError("flash write failed"); }
	c_free(merged);
}

/* host.flashErase(offset, length): set a sector range to 0xFF. */
void xs_host_flash_erase(xsMachine *the)
{
	long offset = xsmcToInteger(xsArg(0)), length = xsmcToInteger(xsArg(1));
	uint8_t ff[4096];
	checkRange(the, offset, length);
	c_memset(ff, 0xFF, sizeof(ff));
	while (length > 0) {
		long n = length < (long)sizeof(ff) ? length : (long)sizeof(ff);
		if (pwrite(gFlash, ff, n, offset) != n) xsUnknownError("flash erase failed");
		offset += n;
		length -= n;
	}
}

/* host.freeHeap(): what the machine may still allocate before its creation limits (chunks). */
void xs_host_free_heap(xsMachine *the)
{
	txMachine *m = (txMachine *)the;
	long used = (long)m->currentChunksSize + (long)m->currentHeapCount * (long)sizeof(txSlot);
	xsmcSetInteger(xsResult, used < 4 * 1024 * 1024 ? (xsIntegerValue)(4 * 1024 * 1024 - used) : 0);
}

int main(int argc, char *argv[])
{
	GMainLoop *loop;
	xsMachine *machine;
	gArgc = argc;
	gArgv = argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	loop = g_main_loop_new(NULL, FALSE);
	machine = fxPrepareMachine(NULL, xsPreparation(), "xsota", NULL, NULL);
	if (!machine) {
		fprintf(stderr, "cannot create the XS machine\n");
		return 71;
	}
	xsBeginHost(machine);
	{
		xsmcVars(1);
		xsTry {
			xsVar(0) = xsAwaitImport("moddable-host/main", XS_IMPORT_DEFAULT);
			xsCallFunction0(xsVar(0), xsGlobal);
		}
		xsCatch {
			fprintf(stdout, "@panic %s\n", xsmcToString(xsException));
			fflush(stdout);
			exit(70);
		}
	}
	xsEndHost(machine);
	g_main_loop_run(loop);
	return 0;
}

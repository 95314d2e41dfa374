/*
 * The C host of the Linux program (mcconfig -p x-cli-lin): the SDK has no main() for x-cli
 * targets, so this one creates the XS machine from the linked archive (mc.xs.c), runs the
 * default export of "xsota/moddable-host/main" and then the GLib main loop that Moddable's lin
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
	if (status == XS_JAVASCRIPT_STACK_OVERFLOW_EXIT) {
		/* the path that overflowed, innermost first, each frame with the stack slots in use below it */
		txMachine *m = (txMachine *)the;
		txSlot *frame;
		char name[128];
		for (frame = m->frame; frame; frame = frame->next) {
			name[0] = 0;
			fxBufferFrameName(m, name, sizeof(name), frame, "");
			fprintf(stdout, "@stack %ld %s\n", (long)(m->stackTop - frame), name);
		}
	}
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

/* The unused part of the XS stack is filled with this byte at start. Pushes write downward from
 * stackTop; the regular expression engine (xsre.c fxPushState) also keeps its states upward from
 * stackBottom. So the high-water mark of the pushes is the first run of untouched slots found
 * going down from the current stack pointer (release builds have no mxInstrument stackPeak). */
#define STACK_FILL 0xA5
#define STACK_GAP 4

static void fillStack(txMachine *m)
{
	c_memset(m->stackBottom, STACK_FILL, (char *)m->stack - (char *)m->stackBottom);
}

static int untouched(txSlot *slot)
{
	const uint8_t *p = (const uint8_t *)slot;
	size_t i;
	for (i = 0; i < sizeof(txSlot); i++) if (p[i] != STACK_FILL) return 0;
	return 1;
}

static long stackUsed(txMachine *m)
{
	txSlot *p = m->stack;
	int clean = 0;
	while (p > m->stackBottom && clean < STACK_GAP) {
		p--;
		clean = untouched(p) ? clean + 1 : 0;
	}
	if (clean == STACK_GAP) p += STACK_GAP;
	return (long)(m->stackTop - p);
}

/* Slots written upward from stackBottom (the regular expression engine's states), up to the first untouched run. */
static long stackBottomUsed(txMachine *m)
{
	txSlot *p = m->stackBottom;
	int clean = 0;
	while (p < m->stack && clean < STACK_GAP) {
		clean = untouched(p) ? clean + 1 : 0;
		p++;
	}
	if (clean == STACK_GAP) p -= STACK_GAP;
	return (long)(p - m->stackBottom);
}

/*
 * host.memory(collect): [chunk bytes in use, slots in use, peak chunk bytes, peak slots, chunk
 * heap bytes, slot heap count, stack slots used at most, stack slots, bytes per slot, slots the
 * regular expression engine used from the stack's bottom]. With
 * collect, a full garbage collection runs first, so the "in use" figures are what is live.
 * The peaks are XS's own (xsMemory.c: highest in use since start, garbage included).
 */
void xs_host_memory(xsMachine *the)
{
	txMachine *m = (txMachine *)the;
	long values[10];
	int i;
	if (xsmcArgc > 0 && xsmcTest(xsArg(0))) xsCollectGarbage();
	values[0] = (long)m->currentChunksSize;
	values[1] = (long)m->currentHeapCount;
	values[2] = (long)m->peakChunksSize;
	values[3] = (long)m->peakHeapCount;
	values[4] = (long)m->maximumChunksSize;
	values[5] = (long)m->maximumHeapCount;
	values[6] = stackUsed(m);
	values[7] = (long)(m->stackTop - m->stackBottom);
	values[8] = (long)sizeof(txSlot);
	values[9] = stackBottomUsed(m);
	xsmcVars(1);
	xsmcSetNewArray(xsResult, 10);
	for (i = 0; i < 10; i++) {
		xsmcSetInteger(xsVar(0), (xsIntegerValue)values[i]);
		xsmcSetIndex(xsResult, i, xsVar(0));
	}
}

int main(int argc, char *argv[])
{
	GMainLoop *loop;
	xsMachine *machine;
	int i, idle = 0;
	gArgc = argc;
	/* --idle: the bench's baseline, the same program with none of the agent's modules imported */
	for (i = 1; i < argc; i++) if (!strcmp(argv[i], "--idle")) idle = 1;
	gArgv = argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	loop = g_main_loop_new(NULL, FALSE);
	machine = fxPrepareMachine(NULL, xsPreparation(), "xsota", NULL, NULL);
	if (!machine) {
		fprintf(stderr, "cannot create the XS machine\n");
		return 71;
	}
	fillStack((txMachine *)machine);
	xsBeginHost(machine);
	{
		xsmcVars(1);
		xsTry {
			xsVar(0) = xsAwaitImport(idle ? "xsota/moddable-host/idle" : "xsota/moddable-host/main", XS_IMPORT_DEFAULT);
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

/*
 * host.census() (main.ts --memory --census): after a full GC, to stdout: "@census kinds K:N ..." the
 * live slots by XS kind (xsAll.h txKind; 0 counts free slots too), "@census chunks K:BYTES ..." the
 * chunk bytes those slots own (strings, arrays, array buffers, code, suspended stacks; 64-bit
 * sizes), then the instances grouped by their first five property names (#K for an internal
 * property of kind K, "?" for an index or symbol; functions by their name), largest first: what
 * holds the slots.
 */
#define CENSUS_GROUPS 512
void xs_host_census(xsMachine *the)
{
	txMachine *m = (txMachine *)the;
	long kinds[64] = { 0 };
	static char sig[CENSUS_GROUPS][96];
	static long gcount[CENSUS_GROUPS], gslots[CENSUS_GROUPS];
	int groups = 0, i;
	txSlot *heap, *s, *limit, *p;
	long cbytes[64] = { 0 };
	int detail = getenv("XSOTA_CENSUS_DETAIL") != NULL;
	xsCollectGarbage();
	for (heap = m->firstHeap; heap; heap = heap->next) {
		limit = heap->value.reference;
		for (s = heap + 1; s < limit; s++) {
			if (s->kind >= 0 && s->kind < 64) {
				void *ptr = NULL;
				txBlock *b;
				kinds[s->kind]++;
				switch (s->kind) {
				case XS_STRING_KIND: ptr = s->value.string; break;
				case XS_BIGINT_KIND: ptr = s->value.bigint.data; break;
				case XS_ARRAY_KIND: case XS_STACK_KIND: case XS_ARGUMENTS_STRICT_KIND: case XS_ARGUMENTS_SLOPPY_KIND: ptr = s->value.array.address; break;
				case XS_ARRAY_BUFFER_KIND: ptr = s->value.arrayBuffer.address; break;
				case XS_CODE_KIND: ptr = s->value.code.address; break;
				case XS_MAP_KIND: case XS_SET_KIND: case XS_WEAK_MAP_KIND: case XS_WEAK_SET_KIND: ptr = s->value.table.address; break;
				}
				if (ptr) for (b = m->firstBlock; b; b = b->nextBlock) {
					if ((txByte *)ptr > (txByte *)(b + 1) && (txByte *)ptr < b->limit) {
						long size = (long)(((txChunk *)((txByte *)ptr - sizeof(txChunk)))->size & 0x7FFFFFFF) + (long)sizeof(txChunk);
						cbytes[s->kind] += size;
						/* XSOTA_CENSUS_DETAIL=1: each string and array chunk of 24 bytes or more */
						if (detail && s->kind == XS_STRING_KIND && size >= 24) printf("@census string %ld %.48s\n", size, s->value.string);
						if (detail && s->kind == XS_ARRAY_KIND) printf("@census array %ld length %u\n", size, (unsigned)s->value.array.length);
						break;
					}
				}
			}
			if (s->kind == XS_INSTANCE_KIND) {
				/* a function is grouped by its name, any other instance by its first five property names */
				int function = s->next && (s->next->kind == XS_CODE_KIND || s->next->kind == XS_CODE_X_KIND || s->next->kind == XS_CALLBACK_KIND);
				char buf[96];
				int n = 1, names = 0;
				buf[0] = 0;
				for (p = s->next; p; p = p->next) {
					char *k = (p->ID != XS_NO_ID && !(p->flag & XS_INTERNAL_FLAG)) ? fxGetKeyName(the, p->ID) : NULL;
					n++;
					if (function) {
						if (!buf[0] && k && !strcmp(k, "name") && (p->kind == XS_STRING_KIND || p->kind == XS_STRING_X_KIND))
							snprintf(buf, sizeof(buf), "function %.60s", p->value.string);
					}
					else if (names < 5 && strlen(buf) < 80) {
						if (p->flag & XS_INTERNAL_FLAG) snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "#%d,", p->kind);
						else snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s,", k ? k : "?");
						names++;
					}
				}
				if (function && (!buf[0] || (detail && !strcmp(buf, "function ")))) {
					/* an anonymous function; with XSOTA_CENSUS_DETAIL, by the names its closure holds */
					txSlot *env = (s->next->kind == XS_CODE_KIND || s->next->kind == XS_CODE_X_KIND) ? s->next->value.code.closures : NULL;
					snprintf(buf, sizeof(buf), "function ");
					if (detail) {
						snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "closure ");
						if (env) for (p = env->next; p && strlen(buf) < 80; p = p->next) {
							char *k = p->ID != XS_NO_ID ? fxGetKeyName(the, p->ID) : NULL;
							snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s,", k ? k : "?");
						}
					}
				}
				for (i = 0; i < groups; i++) if (!strcmp(sig[i], buf)) break;
				if (i == groups && groups < CENSUS_GROUPS) { strcpy(sig[groups], buf); gcount[groups] = 0; gslots[groups] = 0; groups++; }
				if (i < groups) { gcount[i]++; gslots[i] += n; }
			}
		}
	}
	printf("@census kinds");
	for (i = 0; i < 64; i++) if (kinds[i]) printf(" %d:%ld", i, kinds[i]);
	printf("\n@census chunks");
	for (i = 0; i < 64; i++) if (cbytes[i]) printf(" %d:%ld", i, cbytes[i]);
	printf("\n");
	for (;;) {
		long best = 0; int bi = -1;
		for (i = 0; i < groups; i++) if (gslots[i] > best) { best = gslots[i]; bi = i; }
		if (bi < 0 || best < 3) break;
		printf("@census %5ld slots %4ld x {%s}\n", gslots[bi], gcount[bi], sig[bi]);
		gslots[bi] = 0;
	}
	fflush(stdout);
}

#include <stdio.h>

struct record {
    char tag;   /* 7 bytes of padding follow */
    long value;
};

/* Leaves pointers to its own stack frame where write_record's frame will be. */
static void scribble(void) {
    volatile void *slots[8];
    for (int i = 0; i < 8; i++)
        slots[i] = (void *)&slots[i];
}

static int write_record(const char *path) {
    struct record r; /* no memset: the padding is whatever was there */
    r.tag = 'R';
    r.value = 42;
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    fwrite(&r, sizeof r, 1, f);
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    scribble();
    return write_record(argv[1]);
}

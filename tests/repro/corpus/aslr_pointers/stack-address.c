#include <stdio.h>

int main(void) {
    int local = 0;
    printf("%p\n", (void *)&local);
    return local;
}

int triple(int x) { return 3 * x; }
static int counter;
int next(void) { return ++counter; }

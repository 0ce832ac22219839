// Sleeps for the number of seconds in its first argument: a long-running
// program to interrupt.
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char** argv) {
  sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 30);
  return 0;
}

// Copies stdin to stdout in upper case and reports the byte count on stderr:
// checks that all three standard streams pass through the processor.
#include <ctype.h>
#include <stdio.h>
int main(void) {
  long n = 0;
  int c;
  while ((c = getchar()) != EOF) {
    putchar(toupper(c));
    ++n;
  }
  fprintf(stderr, "upper: %ld bytes\n", n);
  return 0;
}

// Placeholder until written below.
int main() { return 0; }

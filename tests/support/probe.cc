// Placeholder until the probe lands.
int main() { return 0; }

/* Extends the list leaks_early_lib's constructor started: no leak. */
void early_add(int n);

int main(void)
{
    early_add(16);
    return 0;
}

void main()
{
    int x = ;
}

public static class Program
{
    public static void Main()
    {
        long n = 0;
        while (true)
        {
            n++;
        }
    }
}

using System;

public static class Program
{
    public static void Main()
    {
        string line = Console.ReadLine();
        if (line != null)
        {
            Console.WriteLine(line);
        }
    }
}

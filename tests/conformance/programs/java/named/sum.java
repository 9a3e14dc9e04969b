import java.util.Scanner;

// Issue 19: a file not named after its class; javac accepts it as the class is not public.
class Adder {
    static long add(long a, long b) {
        return a + b;
    }
}

class Main {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        System.out.println(Adder.add(in.nextLong(), in.nextLong()));
    }
}

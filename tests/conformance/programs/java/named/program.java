import java.util.Scanner;

// Issue 22: a public class in a file of another name (javac requires HelloWorld.java; Stockade moves it).
/* public class NotThisOne {} */
public class HelloWorld {
    public static class Inner {}

    public static void main(String[] args) {
        String text = "public class Decoy {";
        Scanner in = new Scanner(System.in);
        System.out.println(in.nextLong() + in.nextLong());
    }
}

package app;

import java.util.Scanner;

// In a package, and the stem differs from the class only by case: java runs app.Solution.
class Solution {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        System.out.println(in.nextLong() + in.nextLong());
    }
}

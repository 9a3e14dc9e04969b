class Adder {
  def add(a: Long, b: Long): Long = a + b
}

object Solution {
  def main(args: Array[String]): Unit = {
    val Array(a, b) = scala.io.StdIn.readLine().trim.split("\\s+").map(_.toLong)
    println(new Adder().add(a, b))
  }
}
